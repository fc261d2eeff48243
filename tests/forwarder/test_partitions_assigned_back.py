"""A partition revoked and assigned back to the same consumer is read again from its first
record not done, and only from there: every record once, every dead letter once.

kafka-python keeps the fetch position of a partition its consumer gets back, so the forwarder
seeks it back (docs/forwarder.md, *Scaling*). The records the poll that brought the assignment
fetched from the old position are read again after the seek, in order: taking them too would
send them twice (a profile ``$add`` applied twice). And a record dead-lettered before the
partition came back is done once its dead letter is acknowledged: seeking to it would
dead-letter it again and send every record after it again. Unit tests with the scripted
consumer of ``test_loop``, taught to seek.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, RetryPolicy, Wait
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, Record, ScriptedConsumer, _partition, _records
from .test_loop_stopping import DeadLetterProducer, LandedFuture, _poison, _run_bounded

EXIT_BOUND = 10.0


class SeekingConsumer(ScriptedConsumer):
    """``seek`` makes the next fetch of the partition its records from the offset sought
    (``log``: every record of each partition, by offset), dropping what else was scripted;
    ``next_poll`` hooks run before the next poll, whatever its number."""

    def __init__(self, partitions: Sequence[Any], log: dict[Any, list[Record]]) -> None:
        super().__init__(partitions)
        self.log = log
        self.seeks: list[tuple[int, int]] = []
        self.next_poll: list[Callable[[], None]] = []

    def seek(self, partition: Any, offset: int) -> None:
        self.seeks.append((partition.partition, offset))
        ready = dict(self.script[0]) if self.script else {}
        ready[partition] = [r for r in self.log.get(partition, []) if r.offset >= offset]
        self.script = [{p: records for p, records in ready.items() if records}]

    def poll(self, timeout_ms: int) -> dict[Any, list[Record]]:
        while self.next_poll:
            self.next_poll.pop(0)()
        return super().poll(timeout_ms)

    def revoke(self, partition: Any) -> None:
        self.assigned.discard(partition)
        self.listener.on_partitions_revoked({partition})

    def assign(self, partition: Any) -> None:
        self.assigned.add(partition)
        self.listener.on_partitions_assigned({partition})


def _config(**overrides: Any) -> ForwarderConfig:
    settings: dict[str, Any] = {
        "source": "bus",
        "dead_letter_topic": "dead-letters",
        "log_interval": 0.0,
        **overrides,
    }
    return ForwarderConfig(**settings)


def _insert_ids(messages: Sequence[Message]) -> list[str]:
    return [m.insert_id or "" for m in messages]


def test_records_fetched_from_the_old_position_with_the_assignment_are_not_taken() -> None:
    """Records 0-4 are buffered when the partition is revoked and assigned back in one poll,
    which also hands out 5-9, fetched from where the consumer was: they are read again after
    the seek to 0, with 0-4, and delivered once."""
    p0 = _partition(0)
    log = {p0: _records(0, range(10))}
    consumer = SeekingConsumer([p0], log)
    consumer.script = [{p0: log[p0][:5]}, {p0: log[p0][5:]}]

    def rebalance() -> None:
        consumer.revoke(p0)
        consumer.assign(p0)

    consumer.before_poll[2] = rebalance
    delivered: list[str] = []
    forwarder: Forwarder

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        delivered.extend(_insert_ids(messages))
        forwarder.request_stop()
        return [DeliveryReport(m, DeliveryStatus.ACCEPTED, "test", attempts=1) for m in messages]

    producer = DeadLetterProducer([])
    forwarder = Forwarder(
        consumer,
        TOPIC,
        deliver,
        _config(batch_records=10, linger=60.0),
        dead_letters=DeadLetterWriter(producer, "dead-letters", "group"),
    )
    _, raised = _run_bounded(forwarder, EXIT_BOUND)

    assert raised is None
    assert consumer.seeks == [(0, 0)]
    assert len(delivered) == len(set(delivered)) == 10, f"{len(delivered)} sends of 10 records"
    assert consumer.commits[-1] == {p0: 10}


def test_a_record_dead_lettered_before_its_partition_came_back_is_not_read_again() -> None:
    """p0's record 1 is poison, dead-lettered when read; p0 is revoked while the delivery of
    its other records (and p1's) is out, and assigned back while the round waits to retry
    p1's, which failed. p0 is read again from 3, past its records done: the poison's dead
    letter was acknowledged, so it is not sent again, nor record 2."""
    p0, p1 = _partition(0), _partition(1)
    log = {p0: [_records(0, range(1))[0], _poison(0, 1), _records(0, range(2, 3))[0]]}
    consumer = SeekingConsumer([p0, p1], log)
    consumer.script = [{p0: log[p0], p1: _records(1, range(2))}]
    accepted: list[str] = []
    rounds: list[int] = []
    forwarder: Forwarder

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        rounds.append(len(messages))
        if len(rounds) == 1:  # p0's 0 and 2, p1's 0 and 1
            accepted.extend(_insert_ids(messages[:2]))
            consumer.next_poll.append(lambda: consumer.revoke(p0))
            wait(0.01)  # a retry inside the round: the revocation is noted meanwhile
            consumer.next_poll.append(lambda: consumer.assign(p0))
            return [
                DeliveryReport(m, DeliveryStatus.ACCEPTED if i < 2 else DeliveryStatus.FAILED, "t")
                for i, m in enumerate(messages)
            ]
        accepted.extend(_insert_ids(messages))
        forwarder.request_stop()
        return [DeliveryReport(m, DeliveryStatus.ACCEPTED, "test", attempts=1) for m in messages]

    producer = DeadLetterProducer([LandedFuture(), LandedFuture()])
    forwarder = Forwarder(
        consumer,
        TOPIC,
        deliver,
        _config(linger=0.0),
        dead_letters=DeadLetterWriter(producer, "dead-letters", "group"),
        retry_policy=RetryPolicy(base=0.01, cap=0.01),
    )
    _, raised = _run_bounded(forwarder, EXIT_BOUND)

    assert raised is None
    assert consumer.seeks == [(0, 3)]
    assert [letter["dead-letter-source-offset"] for letter in producer.sent] == [b"1"]
    assert len(accepted) == len(set(accepted)) == 4, f"records per round: {rounds}"
    assert consumer.commits == [{p0: 3}, {p1: 2}], "p0's commit comes with its seek"
