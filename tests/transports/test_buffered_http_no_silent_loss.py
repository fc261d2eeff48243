"""``buffered_http`` under the failures that used to lose records without a word.

Each test sends through the real transport to the emulator, over a socket: a producer blocked
on a full queue while ``close`` gives up, a report callback that raises, a ``multiprocessing``
child that ends (skipping ``atexit``), and integers JSON libraries refuse.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
import time
from pathlib import Path

import orjson
import pytest

from mixpanel_core.client import Mixpanel
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import TransportError
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import PeopleUpdate
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

from .test_buffered_http import make_event, transport_for, wait_for_stalled_request

pytestmark = pytest.mark.integration


def test_a_producer_blocked_on_a_full_queue_is_refused_by_close(
    mixpanel_emulator: Emulator,
) -> None:
    reports: list[DeliveryReport] = []
    transport = transport_for(
        mixpanel_emulator,
        reports,
        max_queue_messages=2,
        when_full="block",
        block_timeout=10.0,
        linger=0.0,
    )
    mixpanel_emulator.client.stall()
    events = [make_event("blocked", n) for n in range(4)]
    try:
        transport.send(events[0])
        wait_for_stalled_request(mixpanel_emulator)  # events[0] is in flight, held
        transport.send(events[1])
        transport.send(events[2])  # the queue is full now
        outcome: list[BaseException | None] = []

        def produce() -> None:
            try:
                transport.send(events[3])
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        producer = threading.Thread(target=produce)
        producer.start()
        deadline = time.monotonic() + 5
        while transport.sender._queue.total_put < 3 or producer.ident is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)  # the producer is waiting for room (block_timeout is 10 s)
        started = time.monotonic()
        left = transport.close(0.5)
        producer.join(5)
        assert not producer.is_alive()
        assert time.monotonic() - started < 5
    finally:
        mixpanel_emulator.client.release()
    # The blocked producer was told, and nothing it held was left in a queue nobody drains.
    assert len(outcome) == 1
    assert isinstance(outcome[0], TransportError)
    assert "closed" in str(outcome[0])
    assert len(transport.sender._queue) == 0
    # Every record the transport took is accounted for: returned by close and reported FAILED.
    taken = {e.insert_id for e in events[:3]}
    assert {m.insert_id for m in left} == taken
    assert {r.message.insert_id for r in reports if r.message is not None} == taken
    assert all(r.status is DeliveryStatus.FAILED for r in reports)


def test_a_report_callback_that_raises_does_not_stop_the_sender(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[DeliveryReport] = []

    def report(delivery: DeliveryReport) -> None:
        seen.append(delivery)
        raise RuntimeError("a bug in the application's metrics")

    transport = BufferedHttpTransport(
        MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token"),
        BufferedHttpOptions(linger=5.0, exit_timeout=0.0),
        report=report,
        observed=True,
    )
    mixpanel_emulator.client.fail_next(1, 400, endpoints=["track"])
    profile = PeopleUpdate(
        freeze(
            {"$token": "emulator-token", "$distinct_id": "u1", "$set": {"plan": "pro"}},
            "people",
        )
    )
    with caplog.at_level(logging.ERROR, logger="mixpanel_core"):
        transport.send(make_event("callback", 1))  # rejected: its report raises
        transport.send(profile)  # in the same take, to another endpoint
        assert transport.flush(10) == []
        later = make_event("callback", 2)
        transport.send(later)
        assert transport.flush(10) == []
    transport.close(5)
    assert transport.sender._thread is not None
    assert not transport.sender._thread.is_alive()  # ended by close, not by the error
    statuses = sorted((r.status.value, r.message.endpoint) for r in seen if r.message)
    assert statuses == [("accepted", "engage"), ("accepted", "track"), ("rejected", "track")]
    assert mixpanel_emulator.client.insert_ids("track") == [later.insert_id]
    assert len(mixpanel_emulator.client.records("engage")) == 1
    assert any("the report callback failed" in r.getMessage() for r in caplog.records)


def _track_and_end() -> None:
    # The client is built before the fork, as in a pre-fork server; the child's events are
    # queued and the child ends without closing anything.
    for n in range(100):
        _CLIENT.track(f"child-{n}", "from a child", {"n": n})


_CLIENT: Mixpanel


def test_a_multiprocessing_child_delivers_what_it_queued_when_it_ends(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    global _CLIENT
    dead_letters = tmp_path / "dead.jsonl"
    transport = transport_for(
        mixpanel_emulator,
        linger=30.0,  # nothing leaves before the child ends: only the exit flush sends it
        exit_timeout=10.0,
        dead_letter_path=str(dead_letters),
    )
    _CLIENT = Mixpanel("emulator-token", transport)
    child = multiprocessing.get_context("fork").Process(target=_track_and_end)
    child.start()
    child.join(30)
    assert child.exitcode == 0
    records = mixpanel_emulator.client.wait_for_records(100, "track", timeout=10)
    assert sorted(r["properties"]["n"] for r in records) == list(range(100))
    assert not dead_letters.exists()
    transport.close(5)


def test_integers_beyond_64_bits_are_sent_as_the_official_sdk_writes_them(
    mixpanel_emulator: Emulator,
) -> None:
    transport = transport_for(mixpanel_emulator)
    client = Mixpanel("emulator-token", transport)
    client.track("u1", "Purchase", {"order_id": 2**64, "ids": [1, -(2**70)]})
    assert transport.flush(10) == []
    (record,) = mixpanel_emulator.client.records("track")
    # JSON readers that use doubles (orjson here, as Mixpanel's) read them as numbers.
    assert record["properties"]["order_id"] == float(2**64)
    assert record["properties"]["ids"] == [1, float(-(2**70))]
    transport.close(5)


def test_a_dead_letter_with_a_big_integer_is_written(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    dead_letters = tmp_path / "dead.jsonl"
    transport = transport_for(mixpanel_emulator, dead_letter_path=str(dead_letters))
    mixpanel_emulator.client.fail_next(1, 400, endpoints=["track"])
    Mixpanel("emulator-token", transport).track("u1", "Purchase", {"order_id": 2**64})
    assert transport.flush(10) == []
    transport.close(5)
    (line,) = dead_letters.read_bytes().splitlines()
    entry = json.loads(line)  # the standard library keeps the integer exact
    assert entry["status"] == "rejected"
    assert entry["record"]["properties"]["order_id"] == 2**64
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(2**64)  # the case the fallback exists for
