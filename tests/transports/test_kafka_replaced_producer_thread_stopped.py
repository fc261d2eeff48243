"""A replaced producer's network thread is stopped along with it: what it held was reported
FAILED by the replacement, so left running it would still send those records (after their
FAILED reports) and keep its connections open for the life of the process, one thread more per
replacement. Against the real broker; the producer is marked broken as a failure or the
watchdog marks it, while records linger in it, and the next ``send()`` replaces it."""

from __future__ import annotations

import time

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from transports.kafka import KafkaTransport
from transports.kafka.watchdog import WATCHDOG

from .kafka_cases import events

pytestmark = pytest.mark.integration


def test_the_replaced_producers_network_thread_ends(
    kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WATCHDOG, "_look_at_all", lambda now: None)  # only send() replaces
    reports: list[DeliveryReport] = []
    # Records linger a minute: the old producer still holds them when it is replaced.
    transport = KafkaTransport(
        kafka_bootstrap, kafka_topic, {"linger_ms": 60_000}, report=reports.append
    )
    try:
        *held, after = events(3, tag="held")
        for message in held:
            transport.send(message)
        old_sender = transport._producer._sender
        transport._broken = "was found broken by the test"
        transport.send(after)  # replaces the producer, reporting what it held FAILED
        assert [r.status for r in reports] == [DeliveryStatus.FAILED] * 2
        deadline = time.monotonic() + 10
        while old_sender.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not old_sender.is_alive()
        assert transport.flush(30) == []
    finally:
        transport.close(10)
