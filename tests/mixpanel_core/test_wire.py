"""Encoding records for the wire (``mixpanel_core.wire``)."""

from __future__ import annotations

import json
import tracemalloc

import orjson
import pytest

from mixpanel_core import wire
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.messages import message_from_json
from mixpanel_core.wire import dumps, dumps_str, loads


def test_encoded_records_hold_only_their_own_bytes() -> None:
    """Queues hold encoded records by the thousand: each must cost about its length, not
    the encoder's working buffer (orjson's own result holds at least 4 KiB)."""
    record = {"event": "e", "properties": {"distinct_id": "u1", "plan": "pro", "n": 1}}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [dumps(record) for _ in range(1000)]
        per_record = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    finally:
        tracemalloc.stop()
    assert held[0] == orjson.dumps(record)
    assert per_record < len(held[0]) + 100


def test_integers_beyond_64_bits_are_written_as_the_official_sdk_writes_them() -> None:
    record = FrozenDict(
        event="e",
        properties=FrozenDict(order_id=2**64, ids=(1, -(2**70)), city="Zürich", share=0.5),
    )
    # The official SDK: json.dumps(..., separators=(",", ":")); compared as parsed JSON, since
    # it escapes non-ASCII and we send UTF-8.
    official = json.dumps(record, separators=(",", ":"))
    assert json.loads(dumps(record)) == json.loads(official)
    assert json.loads(dumps_str(record)) == json.loads(official)
    assert b"18446744073709551616" in dumps(record)


def test_integers_beyond_64_bits_are_read_back_exactly() -> None:
    # orjson alone reads them as floats: 2**70 + 1 would come back rounded.
    text = b'{"event":"e","properties":{"big":1180591620717411303425,"neg":-36893488147419103232}}'
    assert loads(text)["properties"] == {"big": 2**70 + 1, "neg": -(2**65)}
    assert loads(text.decode())["properties"]["big"] == 2**70 + 1
    message = message_from_json("track", text)
    assert message.record["properties"]["big"] == 2**70 + 1
    assert message.json() == text


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b"[NaN]", "unexpected character"),
        (b"[12345678901234567890123, Infinity]", "Infinity is not valid JSON"),
        (b"[1,", "unexpected end of data"),
        (b"[12345678901234567890123,", "Expecting value"),
    ],
)
def test_loads_refuses_what_is_not_json_on_either_path(text: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        loads(text)


@pytest.mark.parametrize(
    ("text", "deeper"),
    [
        ("[" * 100 + "]" * 100, False),
        ("[" * 101 + "]" * 101, True),
        ('{"a":' * 100 + "1" + "}" * 100, False),
        ('{"a":' * 100 + "[]" + "}" * 100, True),
        ("[" + ",".join(["[[1]]"] * 500) + "]", False),  # many brackets, shallow
    ],
)
def test_loads_record_refuses_more_than_100_levels(text: str, deeper: bool) -> None:
    assert wire.nested_deeper_than(loads(text), wire.RECORD_DEPTH_LIMIT) is deeper
    if deeper:
        with pytest.raises(wire.NestedTooDeeplyError, match="more than 100 levels deep"):
            wire.loads_record(text)
    else:
        assert wire.loads_record(text) == loads(text)
