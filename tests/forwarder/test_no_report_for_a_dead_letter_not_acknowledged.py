"""A record whose dead letter the broker never acknowledged gets no final report (outcomes.py,
dead_lettering.py): it stays uncommitted and is read again by the next owner of its
partition, which reports it then. Reported at the send, ``mixpanel_delivered`` would hear of a
DROPPED record that is later reported again, or delivered after all.

Scripted stand-ins for Kafka, as in test_loop_stopping: a dead-letter producer whose broker
never answers, and a stop whose shutdown deadline ends the wait for it.
"""

from __future__ import annotations

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.forwarder.loop import Forwarder

from .test_loop import TOPIC, ScriptedConsumer, _partition, _records
from .test_loop_stopping import (
    EXIT_BOUND,
    DeadLetterProducer,
    UnansweredFuture,
    _config,
    _poison,
    _run_bounded,
    _StopAfterDelivering,
)


def test_a_poison_record_whose_dead_letter_is_never_acknowledged_is_not_reported() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: [*_records(0, range(1)), _poison(0, 1)]}]
    seen: list[DeliveryReport] = []
    stopping = _StopAfterDelivering()
    producer = DeadLetterProducer([UnansweredFuture()])
    writer = DeadLetterWriter(producer, "dead-letters", "group")
    forwarder = stopping.forwarder = Forwarder(
        consumer, TOPIC, stopping, _config(), dead_letters=writer, report=seen.append
    )

    _, raised = _run_bounded(forwarder, EXIT_BOUND)

    assert raised is None
    assert len(producer.sent) == 1, "the dead letter was sent"
    assert consumer.commits == [{p0: 1}], "not past the unacknowledged dead letter"
    assert [report.status for report in seen] == [DeliveryStatus.ACCEPTED], (
        "only the delivered record; the poison one is read, and reported, again later"
    )
