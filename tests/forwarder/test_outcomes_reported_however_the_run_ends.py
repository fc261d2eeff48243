"""Every record done before the forwarder exits gets its final report, however the run ends
(loop.py, outcomes.py): the records delivered by the shutdown's last rounds after a SIGTERM,
and those accepted in the turn that a ``ForwarderError`` ended (a dead letter the producer
refused). They are committed; left unreported, a ``mixpanel_delivered`` hook counting
deliveries would come up short with nothing saying why.

Scripted stand-ins for Kafka, as in test_loop and test_loop_stopping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.config import ForwarderError
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, Wait
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, ScriptedConsumer, _partition, _records
from .test_loop_stopping import EXIT_BOUND, _accept, _config, _run_bounded


class RefusingProducer:
    """A dead-letter producer that refuses every record at once (a topic it may not write)."""

    def send(self, topic: str, key: Any, value: Any, headers: list[tuple[str, bytes]]) -> Any:
        raise kafka_python().errors.TopicAuthorizationFailedError()

    def close(self, timeout: float) -> None:
        pass


def test_records_delivered_by_the_shutdown_after_a_stop_are_reported() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(2))}]
    seen: list[DeliveryReport] = []
    writer = DeadLetterWriter(RefusingProducer(), "dead-letters", "group")
    # A linger far longer than the test: the records are still buffered when the stop comes.
    forwarder = Forwarder(
        consumer, TOPIC, _accept, _config(linger=600.0), dead_letters=writer, report=seen.append
    )
    consumer.before_poll[3] = forwarder.request_stop

    _, raised = _run_bounded(forwarder, EXIT_BOUND)

    assert raised is None
    assert consumer.commits == [{p0: 2}], "delivered by the shutdown, then committed"
    assert [report.status for report in seen] == [DeliveryStatus.ACCEPTED] * 2


def test_records_accepted_in_a_turn_a_forwarder_error_ended_are_reported() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(2))}]
    seen: list[DeliveryReport] = []

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        first, second = messages
        return [
            DeliveryReport(first, DeliveryStatus.ACCEPTED, "test", attempts=1),
            DeliveryReport(second, DeliveryStatus.REJECTED, "test", "invalid", attempts=1),
        ]

    writer = DeadLetterWriter(RefusingProducer(), "dead-letters", "group")
    forwarder = Forwarder(
        consumer, TOPIC, deliver, _config(), dead_letters=writer, report=seen.append
    )

    with pytest.raises(ForwarderError, match="did not take the dead letter"):
        forwarder.run()

    assert consumer.commits == [{p0: 1}], "the accepted record, not the one never dead-lettered"
    assert [report.status for report in seen] == [DeliveryStatus.ACCEPTED]
