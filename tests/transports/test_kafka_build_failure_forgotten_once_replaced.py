"""Once a replacement producer is built, the failure of an earlier build is forgotten: when the
new producer breaks in turn, the next ``send()`` builds another at once rather than refusing the
message with the old "no new one could be built yet" (what it does while builds fail, so that
each send does not wait for a broker in turn). Against the real broker; a build is made to fail
once, as when no broker answered, and the watchdog's retry is made by hand."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import TransportError
from transports.kafka import KafkaTransport
from transports.kafka.watchdog import WATCHDOG

from .kafka_cases import events

pytestmark = pytest.mark.integration


def test_a_producer_broken_after_a_recovery_is_replaced_at_the_next_send(
    kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WATCHDOG, "_look_at_all", lambda now: None)  # its looks made by hand
    reports: list[DeliveryReport] = []
    lock = threading.Lock()

    def report(delivery: DeliveryReport) -> None:
        with lock:
            reports.append(delivery)

    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 5}, report=report)
    build = transport._replacement.build
    failures = [TransportError("no broker answered, for the test")]

    def build_failing_once() -> Any:
        if failures:
            raise failures.pop()
        return build()

    transport._replacement.build = build_failing_once
    try:
        refused, recovered, after = events(3, tag="rebuilt")
        transport._broken = "was found broken by the test"  # as a failure or the watchdog
        with pytest.raises(TransportError, match="no new one could be built yet"):
            transport.send(refused)
        # The watchdog's next look: its build succeeds.
        transport._watch(time.monotonic())
        deadline = time.monotonic() + 30
        while transport._broken is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert transport._broken is None
        transport.send(recovered)
        assert transport.flush(30) == []
        second = transport._producer
        transport._broken = "was found broken again by the test"
        transport.send(after)  # builds a third producer, nothing refused
        assert transport._producer is not second
        assert transport.flush(30) == []
        assert [(r.message, r.status) for r in reports] == [
            (refused, DeliveryStatus.FAILED),
            (recovered, DeliveryStatus.ACCEPTED),
            (after, DeliveryStatus.ACCEPTED),
        ]
    finally:
        transport.close(10)
