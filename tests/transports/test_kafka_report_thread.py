"""An acknowledgement that comes before ``send()`` has asked to be told of it is not reported on
the caller's thread inside ``send()`` (docs/transports/kafka.md), against the real broker.

kafka-python runs a finished future's callbacks at once, on the thread attaching them: a caller
held up between the producer's ``send()`` and the transport's ``add_callback`` (a loaded
machine) had the report made inside its own ``send()``, where a reporter waiting for something
that caller holds (a lock around ``track()``) waits for ever. The hold-up is made here by
delaying the producer's ``send`` by 0.3 s after it queued the record: nothing else is changed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from transports.kafka import KafkaTransport

from .kafka_cases import events

pytestmark = pytest.mark.integration


def test_an_answer_before_send_returned_is_reported_on_another_thread(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    seen: list[tuple[DeliveryStatus, str]] = []

    def report(delivery: DeliveryReport) -> None:
        seen.append((delivery.status, threading.current_thread().name))

    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 0}, report=report)
    try:
        transport.send(events(1, "warm")[0])
        assert transport.flush(10) == []
        seen.clear()
        queue = transport._producer.send

        def held_up(*args: Any, **kwargs: Any) -> Any:
            future = queue(*args, **kwargs)
            time.sleep(0.3)  # the broker answers meanwhile
            return future

        transport._producer.send = held_up
        transport.send(events(1, "held-up")[0])
        assert transport.flush(10) == []
    finally:
        assert transport.close(10) == []

    [(status, thread)] = seen
    assert status is DeliveryStatus.ACCEPTED
    assert thread == "mixpanel-core-kafka-report", "not on the caller's thread, inside send()"


def test_a_message_sent_from_a_report_is_reported_on_the_network_thread(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """A reporter on the producer's network thread that sends again on the same transport:
    that message's acknowledgement comes later on the same network thread, after its
    callbacks were attached, and is reported there, as docs/transports/kafka.md says (not on
    a thread of its own, as an answer that came before ``send()`` asked to be told is)."""
    seen: dict[str, str] = {}
    [first] = events(1, "first")
    [second] = events(1, "from-the-report")
    holder: dict[str, KafkaTransport] = {}

    def report(delivery: DeliveryReport) -> None:
        assert delivery.message is not None
        seen[delivery.message.insert_id or ""] = threading.current_thread().name
        if delivery.message is first:
            holder["transport"].send(second)

    transport = holder["transport"] = KafkaTransport(
        kafka_bootstrap, kafka_topic, {"linger_ms": 50}, report=report
    )
    try:
        transport.send(first)
        deadline = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assert transport.close(10) == []
    assert seen[first.insert_id or ""].endswith("network-thread"), seen
    assert seen[second.insert_id or ""] == seen[first.insert_id or ""], seen
