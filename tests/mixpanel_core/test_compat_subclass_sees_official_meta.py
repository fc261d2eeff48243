"""A subclass overriding ``people_update`` or ``group_update`` gets the ``meta`` the official
client gives it, call for call: ``{}`` where it gives ``{}`` (code doing
``meta.setdefault(...)`` raised ``AttributeError`` on ``None`` after switching), ``None``
where it gives ``None``, the caller's own where it passes that on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import mixpanel
import pytest

from mixpanel_core.compat import Mixpanel

GIVEN = {"$ip": "1.2.3.4"}

CALLS: dict[str, Callable[[Any, Any], None]] = {
    "people_set": lambda mp, meta: mp.people_set("u", {"a": 1}, meta=meta),
    "people_set_once": lambda mp, meta: mp.people_set_once("u", {"a": 1}, meta=meta),
    "people_increment": lambda mp, meta: mp.people_increment("u", {"a": 1}, meta=meta),
    "people_append": lambda mp, meta: mp.people_append("u", {"a": 1}, meta=meta),
    "people_union": lambda mp, meta: mp.people_union("u", {"a": [1]}, meta=meta),
    "people_unset": lambda mp, meta: mp.people_unset("u", ["a"], meta=meta),
    "people_remove": lambda mp, meta: mp.people_remove("u", {"a": 1}, meta=meta),
    "people_delete": lambda mp, meta: mp.people_delete("u", meta=meta),
    "people_track_charge": lambda mp, meta: mp.people_track_charge("u", 9.5, meta=meta),
    "people_clear_charges": lambda mp, meta: mp.people_clear_charges("u", meta=meta),
    "group_set": lambda mp, meta: mp.group_set("co", "acme", {"a": 1}, meta=meta),
    "group_set_once": lambda mp, meta: mp.group_set_once("co", "acme", {"a": 1}, meta=meta),
    "group_union": lambda mp, meta: mp.group_union("co", "acme", {"a": [1]}, meta=meta),
    "group_unset": lambda mp, meta: mp.group_unset("co", "acme", ["a"], meta=meta),
    "group_remove": lambda mp, meta: mp.group_remove("co", "acme", {"a": 1}, meta=meta),
    "group_delete": lambda mp, meta: mp.group_delete("co", "acme", meta=meta),
}


def recording(base: type) -> type:
    """``base`` with its two update methods noting the ``meta`` they are given (and sending
    nothing)."""

    class Recording(base):  # type: ignore[misc,valid-type]
        seen: list[object]

        def people_update(self, message: Any, meta: Any = None) -> None:
            self.seen.append(meta)

        def group_update(self, message: Any, meta: Any = None) -> None:
            self.seen.append(meta)

    return Recording


@pytest.fixture
def clients() -> Iterator[tuple[Any, Any]]:
    official = recording(mixpanel.Mixpanel)("token")
    ours = recording(Mixpanel)("token")
    official.seen, ours.seen = [], []
    yield official, ours
    ours.close()


@pytest.mark.parametrize("meta", [None, {}, GIVEN], ids=["none", "empty", "given"])
@pytest.mark.parametrize("method", sorted(CALLS))
def test_the_update_a_subclass_overrides_is_given_the_officials_meta(
    clients: tuple[Any, Any], method: str, meta: Any
) -> None:
    official, ours = clients

    CALLS[method](official, meta)
    CALLS[method](ours, meta)

    assert len(official.seen) == 1
    assert ours.seen == official.seen
    assert [type(m) for m in ours.seen] == [type(m) for m in official.seen]
