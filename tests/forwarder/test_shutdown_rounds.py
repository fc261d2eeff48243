"""After a stop, what is buffered is delivered round after round until the shutdown deadline,
and what those rounds settle, dead letters included, is in the last commit.

docs/forwarder.md: SIGTERM delivers what is buffered within ``shutdown_deadline``, commits,
and exits. A record left undone at the exit is sent again by the partition's next owner; one
whose dead letter was acknowledged but not marked done is dead-lettered twice, and the records
after it sent again. Unit tests with the scripted consumer of ``test_loop``; the stop comes
during a round that fails, so the records are still buffered when the shutdown starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, RetryPolicy, Wait
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, ScriptedConsumer, _partition, _records
from .test_loop_stopping import DeadLetterProducer, LandedFuture, _run_bounded

EXIT_BOUND = 10.0
FAILED, ACCEPTED, REJECTED = DeliveryStatus.FAILED, DeliveryStatus.ACCEPTED, DeliveryStatus.REJECTED


class ScriptedRounds:
    """A ``deliver`` answering each round with the next row of ``rounds`` (a status per
    record); the first round asks the forwarder to stop."""

    forwarder: Forwarder

    def __init__(self, rounds: list[list[DeliveryStatus]]) -> None:
        self.rounds = rounds
        self.calls = 0

    def __call__(
        self, endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        if not self.calls:
            self.forwarder.request_stop()
        statuses = self.rounds[self.calls]
        self.calls += 1
        return [
            DeliveryReport(m, s, "test", "refused" if s is REJECTED else None, attempts=1)
            for m, s in zip(messages, statuses, strict=True)
        ]


def _forwarder(
    consumer: ScriptedConsumer, deliver: ScriptedRounds
) -> tuple[Forwarder, DeadLetterProducer]:
    producer = DeadLetterProducer([LandedFuture()])
    config = ForwarderConfig(
        source="bus",
        dead_letter_topic="dead-letters",
        linger=0.0,
        log_interval=0.0,
        shutdown_deadline=EXIT_BOUND,
    )
    forwarder = deliver.forwarder = Forwarder(
        consumer,
        TOPIC,
        deliver,
        config,
        dead_letters=DeadLetterWriter(producer, "dead-letters", "group"),
        retry_policy=RetryPolicy(base=0.01, cap=0.01),
    )
    return forwarder, producer


def test_records_that_fail_again_after_the_stop_are_tried_until_they_are_delivered() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(3))}]
    deliver = ScriptedRounds([[FAILED] * 3, [FAILED] * 3, [ACCEPTED] * 3])
    forwarder, _ = _forwarder(consumer, deliver)

    _, raised = _run_bounded(forwarder, EXIT_BOUND + 5)

    assert raised is None
    assert deliver.calls == 3, "the shutdown went on after its first failed round"
    assert consumer.commits == [{p0: 3}]


def test_a_record_dead_lettered_during_the_shutdown_is_committed_past() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(3))}]
    deliver = ScriptedRounds([[FAILED] * 3, [ACCEPTED, REJECTED, ACCEPTED]])
    forwarder, producer = _forwarder(consumer, deliver)

    _, raised = _run_bounded(forwarder, EXIT_BOUND + 5)

    assert raised is None
    [letter] = producer.sent
    assert letter["dead-letter-source-offset"] == b"1"
    assert consumer.commits == [{p0: 3}], "past the record whose dead letter was acknowledged"
    assert forwarder.metrics.dead_lettered == 1
