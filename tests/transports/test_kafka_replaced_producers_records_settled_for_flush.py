"""What a replaced producer held, once reported FAILED by the replacement, is settled for
``flush()`` and ``close()``: they return at once with nothing held, instead of waiting their
whole timeout for reports already made (and ``flush()`` then returning those messages as if
still unsettled). Against the real broker; the producer is marked broken as a failure or the
watchdog marks it, while records linger in it, and the next ``send()`` replaces it."""

from __future__ import annotations

import threading
import time

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from transports.kafka import KafkaTransport
from transports.kafka.watchdog import WATCHDOG

from .kafka_cases import events

pytestmark = pytest.mark.integration


def test_flush_after_a_replacement_reported_what_the_old_producer_held_returns_at_once(
    kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WATCHDOG, "_look_at_all", lambda now: None)  # only send() replaces
    reports: list[DeliveryReport] = []
    lock = threading.Lock()

    def report(delivery: DeliveryReport) -> None:
        with lock:
            reports.append(delivery)

    # Records linger a minute: the old producer still holds them when it is replaced.
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 60_000}, report=report)
    try:
        *held, after = events(4, tag="held")
        for message in held:
            transport.send(message)
        first = transport._producer
        transport._broken = "was found broken by the test"
        transport.send(after)  # replaces the producer, reporting what it held FAILED
        assert transport._producer is not first
        assert [(r.message, r.status) for r in reports] == [
            (message, DeliveryStatus.FAILED) for message in held
        ]
        started = time.monotonic()
        assert transport.flush(10) == []  # sends `after` at once, and waits for its report
        assert time.monotonic() - started < 3
        assert [r.message for r in reports] == [*held, after]
        assert reports[-1].status is DeliveryStatus.ACCEPTED
        started = time.monotonic()
        assert transport.close(10) == []
        assert time.monotonic() - started < 3
    finally:
        transport.close(10)
