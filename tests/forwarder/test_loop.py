"""Unit tests of the forwarder loop's decisions, with a scripted stand-in for the Kafka consumer
(no broker): backoff with paused polling, rebalances, retries and commits. The integration tests
that cover the same behaviour against the real broker and the emulator:

- paused polling while backing off: test_forwarding's
  test_a_retry_after_longer_than_the_group_timeouts_keeps_the_member_and_loses_nothing, and
  test_rebalance_and_backpressure's
  test_while_mixpanel_fails_every_request_the_records_held_stay_bounded_and_all_arrive_later;
- a revoked partition's buffered records dropped, not committed: test_forwarding's
  test_records_buffered_for_a_revoked_partition_are_dropped_and_delivered_once_by_its_owner,
  and test_rebalance_and_backpressure's
  test_a_member_joining_mid_stream_loses_nothing_and_never_commits_past_an_undelivered_record;
- failed deliveries retried, committed once accepted: test_forwarding's
  test_an_emulator_failing_30_percent_with_429_and_500_loses_nothing, the 503 outage test of
  test_rebalance_and_backpressure above, and test_hanging_mixpanel (nothing undelivered
  committed);
- a record Mixpanel rejects under on_poison = "stop": no broker twin; test_forwarding's
  test_on_poison_stop_exits_1_and_commits_nothing_from_the_poison_record_on stops on a record
  that is not JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, RetryPolicy, Wait
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.messages import Endpoint, Message

TOPIC = "events"


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def _records(partition: int, offsets: range) -> list[Record]:
    value = b'{"event": "e", "properties": {"distinct_id": "u"}}'
    return [
        Record(TOPIC, partition, o, b"u", value, [(headers.ENDPOINT, b"track")]) for o in offsets
    ]


class ScriptedConsumer:
    """Hands out scripted poll results; ``before_poll`` hooks run at given poll numbers."""

    def __init__(self, partitions: Sequence[Any]) -> None:
        self.assigned = set(partitions)
        self.paused_partitions: set[Any] = set()
        self.script: list[dict[Any, list[Record]]] = []
        self.before_poll: dict[int, Callable[[], None]] = {}
        self.polls = 0
        self.paused_while_polling: list[bool] = []
        self.commits: list[dict[Any, int]] = []
        self.commit_timeouts: list[int | None] = []
        """``timeout_ms`` of every ``commit`` call, failed ones too."""
        self.commit_error: Exception | None = None
        """Raised by every ``commit`` when set (a broker that does not answer)."""
        self.close_timeout: int | None = None
        self.listener: Any = None
        self.closed = False

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    def poll(self, timeout_ms: int) -> dict[Any, list[Record]]:
        self.polls += 1
        hook = self.before_poll.pop(self.polls, None)
        if hook is not None:
            hook()
        self.paused_while_polling.append(self.paused_partitions == self.assigned)
        if not self.script:
            return {}
        ready = self.script[0]
        if any(tp in self.paused_partitions for tp in ready):
            return {}
        return self.script.pop(0)

    def assignment(self) -> set[Any]:
        return set(self.assigned)

    def pause(self, *partitions: Any) -> None:
        self.paused_partitions.update(partitions)

    def resume(self, *partitions: Any) -> None:
        self.paused_partitions.difference_update(partitions)

    def paused(self) -> set[Any]:
        return set(self.paused_partitions)

    def commit(self, offsets: dict[Any, Any], timeout_ms: int | None = None) -> None:
        self.commit_timeouts.append(timeout_ms)
        if self.commit_error is not None:
            raise self.commit_error
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    def highwater(self, partition: Any) -> int | None:
        return None

    def close(self, autocommit: bool = True, timeout_ms: int | None = None) -> None:
        self.closed = True
        self.close_timeout = timeout_ms


def _partition(number: int) -> Any:
    return kafka_python().TopicPartition(TOPIC, number)


def _config(**overrides: Any) -> ForwarderConfig:
    settings: dict[str, Any] = {
        "source": "bus",
        "on_poison": "stop",
        "linger": 0.0,
        "log_interval": 0.0,
        **overrides,
    }
    return ForwarderConfig(**settings)


def _reports(messages: Sequence[Message], status: DeliveryStatus) -> list[DeliveryReport]:
    return [DeliveryReport(m, status, "test", attempts=1) for m in messages]


def run_rounds(
    consumer: ScriptedConsumer,
    statuses: list[DeliveryStatus],
    report: Callable[[DeliveryReport], None] | None = None,
    retry_policy: RetryPolicy | None = None,
) -> None:
    """Run a forwarder whose delivery rounds answer every record with ``statuses`` in turn
    (popped as they are used; one request each), until the last round. Rounds are retried
    after 10 ms unless ``retry_policy`` says otherwise; ``report`` observes."""
    forwarder: Forwarder

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        status = statuses.pop(0)
        if not statuses:
            forwarder.request_stop()
        return _reports(messages, status)

    forwarder = Forwarder(
        consumer,
        TOPIC,
        deliver,
        _config(),
        retry_policy=retry_policy or RetryPolicy(base=0.01, cap=0.01),
        report=report,
    )
    forwarder.run()


def test_while_backing_off_every_partition_is_paused_and_poll_is_still_called() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(3))}]
    forwarder: Forwarder

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        polls_before = consumer.polls
        wait(0.35)  # what the ingestion client does after a 429
        assert consumer.polls - polls_before >= 3, "poll() keeps the member in its group"
        assert all(consumer.paused_while_polling[polls_before:])
        forwarder.request_stop()
        return _reports(messages, DeliveryStatus.ACCEPTED)

    forwarder = Forwarder(consumer, TOPIC, deliver, _config())
    forwarder.run()

    assert consumer.paused_partitions == {p0}, "paused again for the shutdown only"
    assert consumer.commits == [{p0: 3}]
    assert consumer.closed


def test_records_of_revoked_partitions_are_dropped_from_the_buffer_and_not_committed() -> None:
    p0, p1 = _partition(0), _partition(1)
    consumer = ScriptedConsumer([p0, p1])
    consumer.script = [{p0: _records(0, range(5)), p1: _records(1, range(2))}]
    delivered: list[Message] = []
    forwarder: Forwarder

    def revoke_p0() -> None:
        consumer.assigned.discard(p0)
        consumer.listener.on_partitions_revoked({p0})
        forwarder.request_stop()

    consumer.before_poll[2] = revoke_p0

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        delivered.extend(messages)
        return _reports(messages, DeliveryStatus.ACCEPTED)

    forwarder = Forwarder(consumer, TOPIC, deliver, _config(linger=60.0))
    forwarder.run()

    assert len(delivered) == 2, "only p1's records were still buffered at shutdown"
    assert consumer.commits == [{p1: 2}]


def test_failed_deliveries_are_retried_and_committed_only_once_accepted() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(4))}]
    outcomes = [DeliveryStatus.FAILED, DeliveryStatus.ACCEPTED]
    forwarder: Forwarder

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        assert consumer.commits == [], "nothing is committed while the batch is undelivered"
        status = outcomes.pop(0)
        if not outcomes:
            forwarder.request_stop()
        return _reports(messages, status)

    from mixpanel_core.ingestion import RetryPolicy

    forwarder = Forwarder(
        consumer, TOPIC, deliver, _config(), retry_policy=RetryPolicy(base=0.01, cap=0.01)
    )
    forwarder.run()

    assert consumer.commits == [{p0: 4}]
    assert forwarder.metrics.retried == 4
    assert forwarder.metrics.delivered == 4


def test_a_rejected_record_under_on_poison_stop_stops_and_holds_its_offset() -> None:
    from mixpanel_core.forwarder.config import ForwarderError

    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(3))}]

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        statuses = [DeliveryStatus.ACCEPTED, DeliveryStatus.REJECTED, DeliveryStatus.ACCEPTED]
        return [DeliveryReport(m, s, "test") for m, s in zip(messages, statuses, strict=True)]

    forwarder = Forwarder(consumer, TOPIC, deliver, _config())
    with pytest.raises(ForwarderError, match=r"stopping at events\[0\]@1"):
        forwarder.run()
    assert consumer.commits == [{p0: 1}]
    assert consumer.closed
