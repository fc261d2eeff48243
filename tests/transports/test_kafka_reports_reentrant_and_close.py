"""The ``kafka`` transport's ``flush()`` and ``close()`` around reports still being made.

A reporter (a plugin's ``mixpanel_delivered``, a ``report=`` callable) may call ``flush()`` or
``close()`` on the transport it is reporting for: it must not wait for its own report. ``close``
stays within its timeout while a slow report is being made, gives up on what is unacknowledged
all at once (so no report of an acknowledgement begins once it gave up), and a reporter that
raises does not keep it from reporting the rest and closing the producer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import TransportError
from mixpanel_core.messages import Message
from transports.kafka import KafkaTransport

from .kafka_cases import events, transport_whose_broker_is_gone

pytestmark = pytest.mark.integration

ACCEPTED = DeliveryStatus.ACCEPTED
FAILED = DeliveryStatus.FAILED


class Reports:
    """Keeps every report, with the time it was made (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.made: list[tuple[DeliveryReport, float]] = []

    def add(self, report: DeliveryReport) -> None:
        with self.lock:
            self.made.append((report, time.monotonic()))

    def reports(self) -> list[DeliveryReport]:
        with self.lock:
            return [report for report, _ in self.made]

    def ids(self) -> list[int]:
        return [id(report.message) for report in self.reports()]


def _sender_stops(transport: KafkaTransport) -> bool:
    sender = transport._producer._sender
    sender.join(5)
    return not sender.is_alive()


# 1. A reporter calling flush() or close() does not wait for its own report.


def test_a_report_that_flushes_on_the_producers_thread_does_not_wait(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """Before: each inner flush waited its whole flush_timeout for its own report, stalling
    every other acknowledgement, and returned its own message as if it had no outcome."""
    holder: dict[str, KafkaTransport] = {}
    inner: list[tuple[DeliveryStatus, float, set[int], int]] = []

    def report(r: DeliveryReport) -> None:
        started = time.monotonic()
        left = holder["transport"].flush()  # flush_timeout: 2 s
        inner.append((r.status, time.monotonic() - started, {id(m) for m in left}, id(r.message)))

    transport = KafkaTransport(kafka_bootstrap, kafka_topic, flush_timeout=2, report=report)
    holder["transport"] = transport
    try:
        messages = events(3)
        started = time.monotonic()
        for message in messages:
            transport.send(message)
        assert transport.flush(20) == []
        assert time.monotonic() - started < 1.5
        assert [status for status, *_ in inner] == [ACCEPTED] * 3
        for _, took, left, own in inner:
            assert took < 1.0
            assert own not in left
    finally:
        transport.close(2)


def test_a_report_that_flushes_in_sends_error_path_waits_only_for_the_others(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """send()'s refusal is reported on the caller's thread; a flush from that report waits for
    the other messages (and their reports), not for the one being reported. Before: send()
    raised only after flush_timeout, and the flush returned the refused message."""
    small, big = events(1)[0], events(1, padding=3000)[0]
    holder: dict[str, KafkaTransport] = {}
    reports = Reports()
    inner: list[tuple[DeliveryStatus, set[int], list[int]]] = []

    def report(r: DeliveryReport) -> None:
        if r.status is FAILED:
            left = holder["transport"].flush()  # flush_timeout: 2 s
            inner.append((r.status, {id(m) for m in left}, reports.ids()))
        reports.add(r)

    transport = KafkaTransport(
        kafka_bootstrap,
        kafka_topic,
        {"max_request_size": len(small.json()) + 1000},  # small fits, big does not
        flush_timeout=2,
        report=report,
    )
    holder["transport"] = transport
    try:
        transport.send(small)
        started = time.monotonic()
        with pytest.raises(TransportError, match="could not produce"):
            transport.send(big)
        assert time.monotonic() - started < 1.0
        # The inner flush returned nothing: not big (its own report), and small only once
        # small's ACCEPTED report had been made.
        assert inner == [(FAILED, set(), [id(small)])]
        assert transport.flush(5) == []
    finally:
        transport.close(2)


def test_a_report_that_closes_on_the_producers_thread_does_not_wait(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """Before: the inner close waited close_timeout for its own report, then as long again
    for the producer to close on its own thread (4 s here). No acknowledgement arrives while
    that thread is in a report, so it gives up at once on what is unacknowledged."""
    holder: dict[str, KafkaTransport] = {}
    reports = Reports()
    inner: list[tuple[float, list[Message]]] = []
    closed = threading.Event()

    def report(r: DeliveryReport) -> None:
        reports.add(r)
        if len(reports.reports()) == 1:
            started = time.monotonic()
            left = holder["transport"].close()  # close_timeout: 2 s
            inner.append((time.monotonic() - started, list(left)))
            closed.set()

    transport = KafkaTransport(
        kafka_bootstrap, kafka_topic, {"linger_ms": 50}, close_timeout=2, report=report
    )
    holder["transport"] = transport
    messages = events(3)
    for message in messages:
        transport.send(message)
    assert closed.wait(10)
    [(took, left)] = inner
    assert took < 1.0
    first, *rest = reports.reports()
    assert first.status is ACCEPTED
    assert id(first.message) not in {id(m) for m in left}
    assert _sender_stops(transport)
    # Every message reported exactly once: the reporting one ACCEPTED, the ones given up on
    # FAILED (and returned), naming why close() did not wait.
    assert sorted(reports.ids()) == sorted(id(m) for m in messages)
    given_up = [r for r in rest if r.status is FAILED]
    assert {id(r.message) for r in given_up} == {id(m) for m in left}
    assert all("close() was called from a delivery report" in (r.reason or "") for r in given_up)
    assert transport.close(1) == ()


# 2. close() stays within its timeout.


@pytest.mark.parametrize("at_exit", [False, True], ids=["close", "exit close"])
def test_close_stays_within_its_timeout_while_a_slow_report_is_being_made(
    kafka_bootstrap: str, kafka_topic: str, at_exit: bool
) -> None:
    """Before: it waited its timeout for the report, then as long again for the producer."""
    started, finished = threading.Event(), threading.Event()

    def report(r: DeliveryReport) -> None:
        started.set()
        time.sleep(2.5)
        finished.set()

    transport = KafkaTransport(kafka_bootstrap, kafka_topic, exit_timeout=1, report=report)
    transport.send(events(1)[0])
    assert started.wait(10)
    begun = time.monotonic()
    if at_exit:
        transport._close_at_exit()
    else:
        assert transport.close(1) == []
    took = time.monotonic() - begun
    assert 0.9 < took < 1.6
    assert finished.wait(5)
    assert _sender_stops(transport)


# 3. No report of an acknowledgement begins once close() gave up.


def test_close_gives_up_on_all_at_once_so_no_report_outlives_it(
    kafka_topic_factory: Callable[..., str], kafka_bootstrap: str
) -> None:
    """Every report takes STEP. Six messages are acknowledged together; their reports are
    made one after another on the producer's thread, so when close()'s time runs out the
    second is being made and four wait. Before: close() took those one at a time, each
    followed by its slow FAILED report, while the producer's thread went on reporting the
    ones it reached first as ACCEPTED; close() returned with one such report still being
    made (neither returned nor reported at that moment)."""
    step = 0.3
    topic = kafka_topic_factory(partitions=1)
    first = threading.Event()
    reports = Reports()

    def report(r: DeliveryReport) -> None:
        first.set()
        time.sleep(step)
        reports.add(r)

    transport = KafkaTransport(kafka_bootstrap, topic, {"linger_ms": 100}, report=report)
    messages = events(6)
    for message in messages:
        transport.send(message)
    assert first.wait(10)
    time.sleep(step / 2)
    # Runs out 1.5 steps after the first report began: the second is half made.
    left = transport.close(step)
    returned = time.monotonic()
    made = reports.ids()
    # At that moment, every message was returned or had its report.
    assert {*made, *(id(m) for m in left)} == {id(m) for m in messages}
    time.sleep(2 * step)
    statuses = {id(r.message): r for r in reports.reports()}
    assert sorted(reports.ids()) == sorted(id(m) for m in messages)  # each exactly once
    assert [statuses[id(m)].status for m in messages] == [ACCEPTED] * 2 + [FAILED] * 4
    assert [id(m) for m in left] == [id(m) for m in messages[2:]]
    assert all("within close()'s 0.3s" in (statuses[id(m)].reason or "") for m in left)
    assert all(at <= returned for _, at in reports.made)


# 4. A raising reporter does not stop close().


def test_a_raising_reporter_does_not_stop_close(caplog: pytest.LogCaptureFixture) -> None:
    """Before: the first FAILED report's exception left close(): the other messages
    unreported, the producer open, and a second close() returned nothing."""
    caplog.set_level(logging.ERROR, logger="transports.kafka")
    attempted: list[Any] = []

    def report(r: DeliveryReport) -> None:
        attempted.append((r.status, id(r.message)))
        if r.status is FAILED:
            raise RuntimeError("plugin bug")

    transport = transport_whose_broker_is_gone(report)
    # The broker is gone: these are never acknowledged.
    doomed = events(3)
    for message in doomed:
        transport.send(message)

    left = transport.close(0.5)

    assert [id(m) for m in left] == [id(m) for m in doomed]
    assert attempted[1:] == [(FAILED, id(m)) for m in doomed]
    assert transport._acks.unacknowledged == {}
    assert transport._producer._closed
    assert _sender_stops(transport)
    failures = [r for r in caplog.records if "delivery reporter failed" in r.getMessage()]
    assert len(failures) == 3
    assert all(r.exc_info and "plugin bug" in str(r.exc_info[1]) for r in failures)
    assert transport.close(0.5) == ()
