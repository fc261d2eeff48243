"""An unexpected error while the sender thread cuts a take into requests loses nothing quietly.

The thread outlives it (what is queued later is still delivered), and the records of that
take, none of them sent, are reported FAILED with the error and dead-lettered. Written from
a mutation audit: dropping that report failed no test, and the take vanished without a word.
The error is made by the function that cuts the batches, raising once: a stand-in for any bug
on that path.
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from mixpanel_core import sender_loop
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator

from .test_buffered_http import make_event, transport_for

pytestmark = pytest.mark.integration


def test_a_take_that_cannot_be_cut_into_requests_is_reported_failed_and_dead_lettered(
    mixpanel_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cut = sender_loop.split_encoded
    calls: list[int] = []

    def fails_once(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug while cutting batches")
        return cut(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sender_loop, "split_encoded", fails_once)
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    transport = transport_for(
        mixpanel_emulator,
        reports,
        dead_letter_path=str(dead),
        linger=10.0,  # until the three are queued: one take
        max_batch_records=3,
    )
    first = [make_event("preparing", n) for n in range(3)]
    later = make_event("preparing", 3)
    with caplog.at_level(logging.ERROR, logger="mixpanel_core"):
        for message in first:
            transport.send(message)
        assert transport.flush(10) == []
        transport.send(later)
        assert transport.flush(10) == []
    transport.close(5)
    failed = [r for r in reports if r.status is DeliveryStatus.FAILED]
    assert [r.message for r in failed] == first
    assert all("RuntimeError: a bug while cutting batches" in (r.reason or "") for r in failed)
    lines = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert [line["record"]["properties"]["$insert_id"] for line in lines] == [
        m.insert_id for m in first
    ]
    assert mixpanel_emulator.client.insert_ids("track") == [later.insert_id]
    assert any("unexpected error while preparing" in r.getMessage() for r in caplog.records)
