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
