"""A ``send()`` made on a Kafka producer's network thread (from a delivery report) to a kafka
transport whose producer is broken does not build the replacement there: building waits for a
broker (up to ``max_block_ms``), and that thread never waits. The message goes to the broken
producer and the replacement is left to the next ``send()`` elsewhere or the watchdog. Against
the real broker; the build is made slow (10 s, a broker that does not answer) to show the wait
it must not make."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import TransportError
from transports.kafka import KafkaTransport
from transports.kafka.network_thread import on_network_thread
from transports.kafka.watchdog import WATCHDOG

from .kafka_cases import events

pytestmark = pytest.mark.integration

SLOW_BUILD = 10.0
QUICK = 3.0


def test_a_send_from_a_report_to_a_broken_producer_does_not_build_its_replacement(
    kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WATCHDOG, "_look_at_all", lambda now: None)  # B stays broken
    b = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 5}, name="b")
    build = b._replacement.build

    def slow_build() -> Any:
        time.sleep(SLOW_BUILD)
        return build()

    b._replacement.build = slow_build
    forwarded, trigger = events(2, tag="network")
    took: list[float] = []
    on_network: list[bool] = []
    done = threading.Event()

    def report(delivery: DeliveryReport) -> None:
        if delivery.message is not trigger or delivery.status is not DeliveryStatus.ACCEPTED:
            return
        on_network.append(on_network_thread())
        started = time.monotonic()
        with contextlib.suppress(TransportError):  # refused is fine: how long it took counts
            b.send(forwarded)
        took.append(time.monotonic() - started)
        done.set()

    a = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 5}, name="a", report=report)
    try:
        a.send(events(1, tag="warm")[0])
        b.send(events(1, tag="warm")[0])
        assert a.flush(30) == []
        assert b.flush(30) == []
        first = b._producer
        b._broken = "was found broken by the test"  # as a failure or the watchdog marks it
        a.send(trigger)
        assert done.wait(SLOW_BUILD * 3)
        assert on_network == [True]
        assert took[0] < QUICK, took
        assert b._producer is first  # not replaced on the network thread
    finally:
        a.close(10)
        b.close(10)
