"""Calls the other drop-in tests leave out, text for text against the official package: ``meta``
on the group and import calls (where the official client puts it on top of the record), and a
charge whose properties carry an ``$amount`` of their own (the official client's ``amount``
argument wins). A difference here changes what reaches Mixpanel for code that switched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mixpanel
import pytest

from mixpanel_core.compat import Mixpanel
from mixpanel_core.version import __version__ as core_version

from ..test_compat_drop_in_fidelity import _texts

META = {"$ip": "1.2.3.4", "$ignore_time": True}


CALLS: list[tuple[str, Callable[[Any], None]]] = [
    ("group_set with meta", lambda mp: mp.group_set("company", "acme", {"n": 1}, meta=META)),
    ("group_delete with meta", lambda mp: mp.group_delete("company", "acme", meta=META)),
    (
        "group_update with meta",
        lambda mp: mp.group_update(
            {"$group_key": "company", "$group_id": "acme", "$set": {"n": 1}}, meta=META
        ),
    ),
    (
        "import_data with meta",
        lambda mp: mp.import_data("key", "u", "Old", 1_600_000_000, {"n": 1}, meta=META),
    ),
    (
        "people_track_charge with an $amount in its properties",
        lambda mp: mp.people_track_charge("u", 9.99, {"$amount": 100, "sku": "x"}),
    ),
]


@pytest.mark.parametrize(("label", "call"), CALLS, ids=[label for label, _ in CALLS])
def test_the_consumer_receives_the_official_text(label: str, call: Callable[[Any], None]) -> None:
    version = f'"$lib_version":"{core_version}"'
    ours = [(e, t.replace(version, '"$lib_version":"5.4.1"')) for e, t in _texts(Mixpanel, call)]
    theirs = _texts(mixpanel.Mixpanel, call)
    assert len(theirs) == 1
    assert ours == theirs
