"""Messages are frozen all the way down, know their endpoint, and round-trip through the wire."""

from __future__ import annotations

import json
from collections.abc import Callable

import attrs
import pytest

from mixpanel_core import ValidationError, message_from_record
from mixpanel_core.frozen import FrozenDict, freeze, freeze_parsed, thaw
from mixpanel_core.messages import (
    Alias,
    Event,
    GroupUpdate,
    ImportEvent,
    Merge,
    Message,
    PeopleUpdate,
    message_from_json,
)
from mixpanel_core.testing import memory_client

Decoder = Callable[[str, object], Message]


def from_parsed_record(endpoint: str, record: object) -> Message:
    return message_from_record(endpoint, json.loads(json.dumps(record)))


def from_json_bytes(endpoint: str, record: object) -> Message:
    return message_from_json(endpoint, json.dumps(record).encode())


# The two ways a record comes back from the wire must agree on every kind and every refusal.
DECODERS = pytest.mark.parametrize("decode", [from_parsed_record, from_json_bytes])


def test_records_are_immutable_at_every_level() -> None:
    client, transport = memory_client()
    source = {"tags": ["a"], "nested": {"k": [1]}}
    client.track("u-1", "E", source)
    source["tags"].append("changed later")
    message = transport.messages[0]
    assert message.record["properties"]["tags"] == ("a",)
    with pytest.raises(TypeError):
        message.record["event"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        message.record["properties"]["nested"].update({"k": 2})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        message.record = FrozenDict()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("endpoint", "record", "cls", "key"),
    [
        ("track", {"event": "E", "properties": {"distinct_id": "u"}}, Event, "u"),
        (
            "track",
            {"event": "$create_alias", "properties": {"distinct_id": "o", "alias": "n"}},
            Alias,
            "o",
        ),
        ("import", {"event": "E", "properties": {"distinct_id": "u"}}, ImportEvent, "u"),
        ("import", {"event": "$merge", "properties": {"$distinct_ids": ["a", "b"]}}, Merge, "a"),
        ("engage", {"$distinct_id": "u", "$set": {"a": 1}}, PeopleUpdate, "u"),
        ("groups", {"$group_key": "co", "$group_id": "x", "$unset": ["a"]}, GroupUpdate, "co:x"),
    ],
)
@DECODERS
def test_from_record_rebuilds_the_message_kind(
    decode: Decoder, endpoint: str, record: dict[str, object], cls: type, key: str
) -> None:
    message = decode(endpoint, record)
    assert type(message) is cls
    assert message.endpoint == endpoint
    assert message.key == key
    assert thaw(message.record) == record


@pytest.mark.parametrize(
    ("endpoint", "record", "field"),
    [
        ("trak", {}, "endpoint"),
        ("track", ["not", "an", "object"], "record"),
        ("track", {"properties": {}}, "event"),
        ("import", {"event": "E", "properties": "x"}, "properties"),
        ("engage", {"$distinct_id": "u"}, "record"),
    ],
)
@DECODERS
def test_from_record_refuses_malformed_records(
    decode: Decoder, endpoint: str, record: object, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        decode(endpoint, record)
    assert field in {p.field for p in caught.value.problems}


def test_insert_id_survives_enrichment_and_round_trip() -> None:
    client, transport = memory_client()
    client.track("u-1", "E")
    original = transport.messages[0]
    assert isinstance(original, Event)
    changed = original.with_properties({"x": 1})
    rebuilt = message_from_record("track", json.loads(json.dumps(changed.record)))
    assert original.insert_id == changed.insert_id == rebuilt.insert_id


def test_freeze_converts_datetimes_and_enum_subclasses() -> None:
    import datetime
    import enum

    class Plan(str, enum.Enum):  # noqa: UP042 (the pre-3.11 idiom users still write)
        PRO = "pro"

    frozen = freeze({"d": datetime.datetime(2021, 1, 2, 3, 4, 5), "p": Plan.PRO}, "x")
    assert frozen == {"d": "2021-01-02T03:04:05", "p": "pro"}
    assert type(frozen["p"]) is str


def test_messages_and_configuration_survive_pickling_for_other_processes() -> None:
    import pickle

    from mixpanel_core.config import config_from_mapping

    client, transport = memory_client()
    client.track("u-1", "E", {"nested": {"list": [1, {"a": 2}]}})
    message = transport.messages[0]
    copy = pickle.loads(pickle.dumps(message))
    assert copy == message
    assert copy.json() == message.json()
    config = config_from_mapping({"transports": {"m": {"type": "memory"}}})
    assert pickle.loads(pickle.dumps(config)) == config


def test_json_is_encoded_once_and_matches_the_record() -> None:
    client, transport = memory_client()
    client.track("u-1", "E", {"a": 1})
    message = transport.messages[0]
    first = message.json()
    assert message.json() is first
    assert json.loads(first) == thaw(message.record)


def test_freezing_parsed_json_matches_the_checked_freeze() -> None:
    text = '{"a": [1, {"b": [2.5, null, {"c": "d"}]}], "e": {"f": {"g": []}}, "h": true}'
    fast = freeze_parsed(json.loads(text))
    assert fast == freeze(json.loads(text), "record")
    assert type(fast["a"]) is tuple
    assert type(fast["a"][1]["b"][2]) is FrozenDict
    assert type(fast["e"]["f"]) is FrozenDict
    assert fast["e"]["f"]["g"] == ()
    with pytest.raises(TypeError):
        fast["a"][1]["b"][2]["c"] = "changed"
    assert freeze_parsed([{"x": [1]}]) == ({"x": (1,)},)


def test_message_from_json_keeps_the_bytes_it_was_given() -> None:
    client, transport = memory_client()
    client.track("u-1", "E", {"n": 1.5, "nested": {"a": [1]}})
    data = transport.messages[0].json()
    rebuilt = message_from_json("track", data)
    assert rebuilt == transport.messages[0]
    assert rebuilt.json() == data
    with pytest.raises(ValidationError, match="is not JSON"):
        message_from_json("track", b"{not json")
