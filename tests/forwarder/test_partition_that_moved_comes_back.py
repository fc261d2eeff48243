"""A partition that moved to another member and comes back much later starts from the group's
commit, not from where this member left it.

What a revoked partition leaves behind (where to read it again, the progress a delivery out
kept marking) matters only until the assignment that follows: if the partition is not handed
back then, another member owns it and moves the group's commit on. Kept longer, it would send
this member back to its old position when the partition returns, every record since delivered
again and the group's commit moved back. Unit test with the seeking scripted consumer of
``test_partitions_assigned_back``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.forwarder.decode import decode
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, Wait
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, _partition, _records
from .test_loop_stopping import DeadLetterProducer, _run_bounded
from .test_partitions_assigned_back import SeekingConsumer, _config, _insert_ids

GROUP_COMMIT = 10
"""Where the other member left the partition's commit before it came back."""


def test_a_partition_back_after_another_member_owned_it_is_not_sent_to_its_old_position() -> None:
    p0, p1 = _partition(0), _partition(1)
    log = {p0: _records(0, range(13)), p1: _records(1, range(2))}
    consumer = SeekingConsumer([p0, p1], log)
    consumer.script = [{p0: log[p0][:3], p1: log[p1]}]
    rounds: list[list[str]] = []
    forwarder: Forwarder

    def p0_moves() -> None:  # an eager rebalance that gives p0 to another member
        consumer.assigned = {p1}
        consumer.listener.on_partitions_revoked({p0, p1})
        consumer.listener.on_partitions_assigned({p1})

    def p0_comes_back() -> None:  # another one, later: p0 is this member's again
        consumer.assigned = {p0, p1}
        consumer.listener.on_partitions_revoked({p1})
        consumer.listener.on_partitions_assigned({p0, p1})
        consumer.script = [{p0: log[p0][GROUP_COMMIT:]}]  # fetched from the group's commit

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        rounds.append(_insert_ids(messages))
        if len(rounds) == 1:  # p0's 0-2 and p1's 0-1: p0 moves while they are out
            consumer.next_poll.append(p0_moves)
            wait(0.01)
            consumer.next_poll.append(p0_comes_back)
        elif set(rounds[-1]) & later_ids:
            forwarder.request_stop()
        return [DeliveryReport(m, DeliveryStatus.ACCEPTED, "test", attempts=1) for m in messages]

    def insert_id(offset: int) -> str:
        record = log[p0][offset]
        decoded = decode(TOPIC, 0, offset, record.value, record.headers)
        assert isinstance(decoded, Message)
        return decoded.insert_id or ""

    later_ids = {insert_id(offset) for offset in range(GROUP_COMMIT, 13)}
    skipped_ids = {insert_id(offset) for offset in range(3, GROUP_COMMIT)}
    producer = DeadLetterProducer([])
    forwarder = Forwarder(
        consumer,
        TOPIC,
        deliver,
        _config(linger=0.0),
        dead_letters=DeadLetterWriter(producer, "dead-letters", "group"),
    )
    _, raised = _run_bounded(forwarder, 10.0)

    assert raised is None
    assert [seek for seek in consumer.seeks if seek[0] == 0] == [], consumer.seeks
    sent = {insert_id for sent_round in rounds for insert_id in sent_round}
    assert later_ids <= sent
    assert not sent & skipped_ids, "records the other member delivered were sent again"
    assert consumer.commits == [{p1: 2}, {p0: 13}], "p0's commit never goes back"
