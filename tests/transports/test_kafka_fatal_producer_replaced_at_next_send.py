"""A record failed by a producer kafka-python holds in a fatal state has that producer replaced
by the next ``send()``, without waiting for the watchdog's next look: the failure itself marks it
broken. Against the real broker, with the watchdog's looks switched off for the test, so that
only the failure can have found the producer broken (otherwise its once-a-second look hides a
failure that marked nothing: every send until then went to a producer that fails it)."""

from __future__ import annotations

import threading

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.kafka.client_library import kafka_python
from transports.kafka import KafkaTransport
from transports.kafka.watchdog import WATCHDOG

from .kafka_cases import events
from .test_kafka_broken_producer import wait_for

pytestmark = pytest.mark.integration


def test_the_send_after_a_fatal_failure_goes_to_a_new_producer(
    kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WATCHDOG, "_look_at_all", lambda now: None)
    reports: list[DeliveryReport] = []
    lock = threading.Lock()

    def report(delivery: DeliveryReport) -> None:
        with lock:
            reports.append(delivery)

    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 5}, report=report)
    try:
        warm, doomed, after = events(3, tag="fatal")
        transport.send(warm)
        assert transport.flush(30) == []
        first = transport._producer
        # What a broker's fatal answer leaves behind (kafka-python's own transition): the
        # producer's sender thread fails every record from then on, and never recovers.
        fatal = kafka_python().errors.KafkaError("fatal for the test")
        first._transaction_manager.transition_to_fatal_error(fatal)
        transport.send(doomed)
        assert wait_for(lambda: len(reports) == 2, 30), reports
        assert reports[1].status is DeliveryStatus.FAILED
        assert reports[1].message == doomed

        transport.send(after)
        assert transport.flush(30) == []
        assert [(r.message, r.status) for r in reports] == [
            (warm, DeliveryStatus.ACCEPTED),
            (doomed, DeliveryStatus.FAILED),
            (after, DeliveryStatus.ACCEPTED),
        ]
        assert transport._producer is not first
        assert transport.close(10) == []
    finally:
        transport.close(10)
