"""Decoding records: messages back, poison named, $insert_id kept or derived deterministically."""

from __future__ import annotations

import re

from mixpanel_core.forwarder.decode import Poison, decode
from mixpanel_core.kafka import headers
from mixpanel_core.messages import Event, PeopleUpdate

TRACK = [(headers.ENDPOINT, b"track"), (headers.SCHEMA, b"1")]


def test_an_event_keeps_its_insert_id() -> None:
    value = b'{"event": "e", "properties": {"distinct_id": "u", "$insert_id": "abc"}}'
    message = decode("t", 0, 7, value, TRACK)
    assert isinstance(message, Event)
    assert message.insert_id == "abc"


def test_an_event_without_insert_id_gets_one_derived_from_its_position() -> None:
    value = b'{"event": "e", "properties": {"distinct_id": "u"}}'
    first = decode("t", 2, 41, value, TRACK)
    again = decode("t", 2, 41, value, TRACK)
    elsewhere = decode("t", 2, 42, value, TRACK)
    assert isinstance(first, Event)
    assert isinstance(again, Event)
    assert isinstance(elsewhere, Event)
    # Pinned, not recomputed here: a redelivery in another process, or after an upgrade, must
    # derive the same id for Mixpanel to deduplicate it.
    assert first.insert_id == again.insert_id == "d9f0dad82fac1cd237f1a66903076ee4"
    assert first.insert_id != elsewhere.insert_id
    assert re.fullmatch("[0-9a-f]{32}", first.insert_id or "")


def test_profile_updates_decode_without_an_insert_id() -> None:
    value = b'{"$token": "t", "$distinct_id": "u", "$set": {"a": 1}}'
    message = decode("t", 0, 0, value, [(headers.ENDPOINT, b"engage")])
    assert isinstance(message, PeopleUpdate)
    assert "$insert_id" not in message.record


def test_poison_records_say_what_is_wrong() -> None:
    cases = {
        "no 'mixpanel-endpoint' header": decode("t", 0, 0, b"{}", []),
        "unknown endpoint 'nope'": decode("t", 0, 0, b"{}", [(headers.ENDPOINT, b"nope")]),
        "schema version '9'": decode(
            "t", 0, 0, b"{}", [(headers.ENDPOINT, b"track"), (headers.SCHEMA, b"9")]
        ),
        "not JSON": decode("t", 0, 0, b"{oops", TRACK),
        "no value": decode("t", 0, 0, None, TRACK),
        "event: must be a string": decode("t", 0, 0, b'{"properties": {}}', TRACK),
    }
    for expected, poison in cases.items():
        assert isinstance(poison, Poison), expected
        assert expected in poison.reason
    shape = cases["event: must be a string"]
    assert isinstance(shape, Poison)
    assert shape.field == "event"


def test_a_header_that_is_not_utf8_is_named_as_such_not_as_missing() -> None:
    """A missing header and an unreadable one call for different fixes."""
    endpoint = decode("t", 0, 0, b"{}", [(headers.ENDPOINT, b"\xfftrack")])
    schema = decode("t", 0, 0, b"{}", [(headers.ENDPOINT, b"track"), (headers.SCHEMA, b"\xfe")])
    assert isinstance(endpoint, Poison)
    assert isinstance(schema, Poison)
    assert endpoint.reason.startswith("the 'mixpanel-endpoint' header is not UTF-8 (b'\\xfftrack')")
    assert schema.reason.startswith("the 'mixpanel-schema-version' header is not UTF-8")


def test_a_record_nested_hundreds_of_levels_deep_is_poison_not_a_crash() -> None:
    # orjson reads it (its limit is 1,024 levels), and freezing it outran the interpreter's
    # stack: the RecursionError stopped the forwarder at this record on every start.
    deep = b"[" * 600 + b"]" * 600
    value = b'{"event": "e", "properties": {"distinct_id": "u", "v": ' + deep + b"}}"
    poison = decode("t", 0, 0, value, TRACK)
    assert isinstance(poison, Poison)
    assert poison.field == "record"
    assert "nested too deeply to read" in poison.reason
