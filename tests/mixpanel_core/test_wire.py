"""Encoding records for the wire (``mixpanel_core.wire``)."""

from __future__ import annotations

import tracemalloc

import orjson

from mixpanel_core.wire import dumps


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
