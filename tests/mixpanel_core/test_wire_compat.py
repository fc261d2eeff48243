"""Every client method produces the official SDK's record, field for field and in order.

Both clients run with the same fixed time and ``$insert_id``; the official one writes into a
capturing consumer, ours into the memory transport. Only ``$lib_version`` may differ.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from typing import Any

import mixpanel as official
import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.testing import MemoryTransport

TOKEN = "project-token"
FIXED_TIME = float(int(time.time())) + 0.25  # recent: /track refuses old events
FIXED_INSERT_ID = "0123456789abcdef0123456789abcdef"


class CapturingConsumer:
    """An official-style consumer that keeps (endpoint, decoded record)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, endpoint: str, json_message: str, api_key: Any = None) -> None:
        self.sent.append((endpoint, json.loads(json_message)))


OFFICIAL_TO_OURS = {"events": "track", "imports": "import", "people": "engage", "groups": "groups"}

CALLS: list[tuple[str, Callable[[Any], None]]] = [
    ("track", lambda mp: mp.track("user-1", "Signed up", {"plan": "pro", "n": 3})),
    ("track with meta", lambda mp: mp.track("u", "E", {"a": 1}, meta={"ip": "1.2.3.4"})),
    ("track overriding time", lambda mp: mp.track("u", "E", {"time": int(FIXED_TIME) - 60})),
    (
        "track with datetime and nested values",
        lambda mp: mp.track(
            "u",
            "E",
            {"when": datetime.datetime(2024, 5, 6, 7, 8, 9), "tags": ["a", "b"], "o": {"k": 1.5}},
        ),
    ),
    (
        "import_data",
        lambda mp: mp.import_data("key", "u", "Old", 1_600_000_000, {"x": True}, api_secret="s"),
    ),
    ("alias", lambda mp: mp.alias("new-id", "old-id")),
    ("merge", lambda mp: mp.merge("key", "id-1", "id-2", api_secret="s")),
    ("people_set", lambda mp: mp.people_set("u", {"$name": "Ann", "age": 40})),
    ("people_set_once", lambda mp: mp.people_set_once("u", {"first": "2024"})),
    ("people_increment", lambda mp: mp.people_increment("u", {"logins": 1})),
    ("people_append", lambda mp: mp.people_append("u", {"items": "sword"})),
    ("people_union", lambda mp: mp.people_union("u", {"items": ["a", "b"]})),
    ("people_unset", lambda mp: mp.people_unset("u", ["old", "older"])),
    ("people_remove", lambda mp: mp.people_remove("u", {"items": "a"})),
    ("people_delete", lambda mp: mp.people_delete("u")),
    ("people_track_charge", lambda mp: mp.people_track_charge("u", 9.99, {"sku": "x"})),
    ("people_track_charge bare", lambda mp: mp.people_track_charge("u", 5)),
    ("people_clear_charges", lambda mp: mp.people_clear_charges("u")),
    ("people_update", lambda mp: mp.people_update({"$distinct_id": "u", "$set": {"a": 1}})),
    ("people_set with meta", lambda mp: mp.people_set("u", {"a": 1}, meta={"$ip": "0"})),
    ("group_set", lambda mp: mp.group_set("company", "acme", {"size": 10})),
    ("group_set_once", lambda mp: mp.group_set_once("company", "acme", {"since": 2020})),
    ("group_union", lambda mp: mp.group_union("company", "acme", {"tags": ["x"]})),
    ("group_unset", lambda mp: mp.group_unset("company", "acme", ["size"])),
    ("group_remove", lambda mp: mp.group_remove("company", "acme", {"tags": "x"})),
    ("group_delete", lambda mp: mp.group_delete("company", "acme")),
    ("group_update", lambda mp: mp.group_update({"$group_key": "k", "$group_id": 1, "$set": {}})),
]


def _fix_clock(client: Any) -> None:
    client._now = lambda: FIXED_TIME
    client._make_insert_id = lambda: FIXED_INSERT_ID


def _official_records(
    call: Callable[[Any], None], monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, dict[str, Any]]]:
    consumer = CapturingConsumer()
    # alias() always builds its own Consumer in the official SDK; capture that one too.
    monkeypatch.setattr(official, "Consumer", lambda *a, **k: consumer)
    client = official.Mixpanel(TOKEN, consumer=consumer)
    _fix_clock(client)
    call(client)
    return [(OFFICIAL_TO_OURS[endpoint], record) for endpoint, record in consumer.sent]


def _our_records(call: Callable[[Any], None]) -> list[tuple[str, dict[str, Any]]]:
    transport = MemoryTransport()
    client = Mixpanel(TOKEN, transport)
    _fix_clock(client)
    call(client)
    return [(m.endpoint, json.loads(json.dumps(m.record))) for m in transport.messages]


def _without_lib_version(record: dict[str, Any]) -> dict[str, Any]:
    props = record.get("properties")
    if isinstance(props, dict):
        props = {k: v for k, v in props.items() if k != "$lib_version"}
        return {**record, "properties": props}
    return record


@pytest.mark.parametrize(("label", "call"), CALLS, ids=[label for label, _ in CALLS])
def test_record_matches_official_sdk(
    label: str, call: Callable[[Any], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _official_records(call, monkeypatch)
    actual = _our_records(call)
    assert len(expected) == 1, label
    assert [e for e, _ in actual] == [e for e, _ in expected]
    ours, theirs = _without_lib_version(actual[0][1]), _without_lib_version(expected[0][1])
    assert ours == theirs
    # Same keys in the same order: the serialized form reads the same.
    assert list(ours) == list(theirs)
    if isinstance(ours.get("properties"), dict):
        assert list(ours["properties"]) == list(theirs["properties"])


def test_every_public_official_method_exists_with_the_same_parameters() -> None:
    import inspect

    names = [
        n
        for n in dir(official.Mixpanel)
        if not n.startswith("_") and n not in ("local_flags", "remote_flags")
    ]
    for name in names:
        theirs = inspect.signature(getattr(official.Mixpanel, name))
        ours = inspect.signature(getattr(Mixpanel, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        for param in theirs.parameters.values():
            assert ours.parameters[param.name].default == param.default, (name, param.name)


def test_insert_id_is_chosen_once_when_the_message_is_made() -> None:
    transport = MemoryTransport()
    client = Mixpanel(TOKEN, transport)
    client.track("u", "E")
    client.track("u", "E")
    first, second = transport.messages
    assert first.insert_id is not None
    assert len(first.insert_id) == 32
    assert first.insert_id != second.insert_id
    assert first.insert_id == first.record["properties"]["$insert_id"]
