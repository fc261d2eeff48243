"""The last commit after a stop gets at least ``KAFKA_FLOOR``, even past the shutdown deadline.

A round whose request was answered after the deadline had passed still had its records
accepted: the commit that follows must be given time to reach a healthy broker, or those
records stay uncommitted and the partition's next owner sends them again (a profile ``$add``
applied twice). Unit test with the scripted consumer of ``test_loop`` and a clock the test
moves, so that "past the deadline" needs no waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.forwarder.shutdown_clock import KAFKA_FLOOR
from mixpanel_core.ingestion import Deadline, Wait
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, ScriptedConsumer, _partition, _records

SHUTDOWN_DEADLINE = 2.0


class HealthyBroker(ScriptedConsumer):
    """Answers every commit given some time; one given none times out, as kafka-python's does."""

    def commit(self, offsets: dict[Any, Any], timeout_ms: int | None = None) -> None:
        if timeout_ms is not None and timeout_ms <= 0:
            self.commit_timeouts.append(timeout_ms)
            raise kafka_python().errors.KafkaTimeoutError(f"no time to wait ({timeout_ms} ms)")
        super().commit(offsets, timeout_ms)


def test_records_accepted_after_the_deadline_are_still_committed() -> None:
    p0 = _partition(0)
    consumer = HealthyBroker([p0])
    consumer.script = [{p0: _records(0, range(3))}]
    now = [100.0]
    forwarder: Forwarder

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        forwarder.request_stop()
        now[0] += SHUTDOWN_DEADLINE + 3  # the answer came 3 s after the deadline
        return [DeliveryReport(m, DeliveryStatus.ACCEPTED, "test", attempts=1) for m in messages]

    config = ForwarderConfig(
        source="bus",
        on_poison="stop",
        linger=0.0,
        log_interval=0.0,
        shutdown_deadline=SHUTDOWN_DEADLINE,
    )
    forwarder = Forwarder(consumer, TOPIC, deliver, config, clock=lambda: now[0])
    forwarder.run()

    floor_ms = int(KAFKA_FLOOR * 1000)
    assert consumer.commits == [{p0: 3}], f"commit timeouts: {consumer.commit_timeouts}"
    assert consumer.commit_timeouts == [floor_ms]
    assert consumer.close_timeout == floor_ms, "leaving the group gets the floor too"
    assert consumer.closed
