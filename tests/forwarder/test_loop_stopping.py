"""Unit tests of the forwarder loop's decisions when it stops, with scripted stand-ins for Kafka
(a consumer, a dead-letter producer whose broker never answers): a 401/403 commits what the
refused call got accepted first, the waits for the dead-letter topic end at the shutdown
deadline, committing nothing they did not see land, and after a stop the commit and the close
get only the time left before the deadline. The integration tests that cover the same
behaviour against the real broker and the emulator:

- a refused call commits what it got accepted: test_refused_credentials_commit (and
  test_forwarding's test_refused_credentials_stop_with_a_clear_error_and_nothing_committed);
  no broker twin for a rejected record inside the refused call, nor for reports that do not
  match the records (a broken ``deliver``, which the real client cannot produce);
- a dead-letter wait ended by the shutdown deadline, nothing past it committed:
  test_dead_letter_deadline (the stop comes during the wait; no broker twin for a stop
  requested before it starts);
- after a stop the commit and the close get the time left: test_frozen_broker_shutdown (that
  the failed commit is not tried again is checked here only);
- acknowledged dead letters committed when a later one times out outside a shutdown: no
  broker twin; test_dead_letter_limits stops the same way on a dead letter the producer
  refuses;
- what is done when the stop comes committed first: test_forwarder_audit's
  test_sigterm_during_a_retry_backoff_commits_what_earlier_requests_of_the_batch_delivered
  (the order against the last deliveries, and a commit refused by a rebalance at shutdown, are
  checked here only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.forwarder import dead_lettering
from mixpanel_core.forwarder.config import ForwarderConfig, ForwarderError
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.forwarder.shutdown_clock import COMMIT_TIMEOUT
from mixpanel_core.ingestion import Deadline, Wait
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.messages import Endpoint, Message

from .test_loop import TOPIC, Record, ScriptedConsumer, _partition, _records

SHUTDOWN_DEADLINE = 1.0
EXIT_BOUND = 6.0
"""Generous for a 1 s deadline on shared cores, far below the 60 s the waits used to take."""


class LandedFuture:
    """A dead letter the broker acknowledged."""

    is_done = True

    def get(self, timeout: float | None = None) -> object:
        return object()


class UnansweredFuture:
    """A dead letter whose broker never answers: ``get`` waits out its timeout, as
    kafka-python's does, and raises its ``KafkaTimeoutError``."""

    is_done = False

    def __init__(self, on_first_wait: Any = None) -> None:
        self.on_first_wait = on_first_wait

    def get(self, timeout: float | None = None) -> object:
        if self.on_first_wait is not None:
            self.on_first_wait, hook = None, self.on_first_wait
            hook()
        time.sleep(timeout or 0)
        raise kafka_python().errors.KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")


class DeadLetterProducer:
    """Hands out the scripted futures, in order; remembers what it was sent and closed with."""

    def __init__(self, futures: list[Any]) -> None:
        self.futures = futures
        self.sent: list[dict[str, bytes]] = []
        self.close_timeouts: list[float] = []

    def send(self, topic: str, key: Any, value: Any, headers: list[tuple[str, bytes]]) -> Any:
        self.sent.append(dict(headers))
        return self.futures.pop(0)

    def close(self, timeout: float) -> None:
        self.close_timeouts.append(timeout)


def _config(**overrides: Any) -> ForwarderConfig:
    settings: dict[str, Any] = {
        "source": "bus",
        "dead_letter_topic": "dead-letters",
        "linger": 0.0,
        "log_interval": 0.0,
        "shutdown_deadline": SHUTDOWN_DEADLINE,
        **overrides,
    }
    return ForwarderConfig(**settings)


def _poison(partition: int, offset: int) -> Record:
    return Record(TOPIC, partition, offset, None, b"{not json", [(headers.ENDPOINT, b"track")])


def _accept(
    endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
) -> list[DeliveryReport]:
    return [DeliveryReport(m, DeliveryStatus.ACCEPTED, "test", attempts=1) for m in messages]


class _StopAfterDelivering:
    """A ``deliver`` that accepts everything, having asked its forwarder to stop first."""

    forwarder: Forwarder

    def __call__(
        self, endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        self.forwarder.request_stop()
        return _accept(endpoint, messages, wait, deadline)


def _run_bounded(forwarder: Forwarder, bound: float) -> tuple[float, BaseException | None]:
    """Run in a thread; how long it took, and what it raised. Fails past ``bound``."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            forwarder.run()
        except BaseException as exc:  # handed to the test, not lost in the thread
            raised.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    took = time.monotonic() - started
    assert not thread.is_alive(), f"still running {took:.1f}s after the start"
    return took, (raised[0] if raised else None)


# -- 401/403 ---------------------------------------------------------------------------------


def test_a_refused_call_commits_its_accepted_records_and_dead_letters_its_rejected_ones() -> None:
    """Records 0-1 were accepted, 2 rejected, 3 accepted by earlier requests of the call;
    4-5 never went out (the 401). 0-3 are settled and committed; 4-5 stay for a restart."""
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(6))}]
    statuses = [DeliveryStatus.ACCEPTED] * 2 + [DeliveryStatus.REJECTED, DeliveryStatus.ACCEPTED]
    statuses += [DeliveryStatus.FAILED] * 2

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        reports = [
            DeliveryReport(m, s, "test", "refused" if s is DeliveryStatus.REJECTED else None)
            for m, s in zip(messages, statuses, strict=True)
        ]
        raise AuthenticationError("Mixpanel refused the project token", reports)

    producer = DeadLetterProducer([LandedFuture()])
    observed: list[DeliveryReport] = []
    forwarder = Forwarder(
        consumer,
        TOPIC,
        deliver,
        _config(),
        dead_letters=DeadLetterWriter(producer, "dead-letters", "group"),
        report=observed.append,
    )

    with pytest.raises(AuthenticationError, match="refused the project token"):
        forwarder.run()

    assert consumer.commits == [{p0: 4}]
    [letter] = producer.sent
    assert letter["dead-letter-source-offset"] == b"2"
    assert letter["dead-letter-reason"] == b"refused"
    assert forwarder.metrics.delivered == 3
    assert forwarder.metrics.dead_lettered == 1
    assert [r.status for r in observed] == [DeliveryStatus.ACCEPTED] * 3 + [DeliveryStatus.REJECTED]
    assert consumer.closed


def test_a_refused_call_whose_reports_do_not_match_its_records_commits_none_of_them() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(3))}]

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        accepted = DeliveryReport(messages[0], DeliveryStatus.ACCEPTED, "test")
        raise AuthenticationError("refused", [accepted])  # one report for three records

    forwarder = Forwarder(consumer, TOPIC, deliver, _config(on_poison="stop"))

    with pytest.raises(AuthenticationError):
        forwarder.run()

    assert consumer.commits == []


# -- dead-letter waits and the shutdown deadline -----------------------------------------------


def test_a_stop_requested_before_an_unanswered_dead_letter_ends_its_wait_at_the_deadline() -> None:
    """Offset 0 is delivered, the dead letter of 1 is never acknowledged: the forwarder exits
    by the shutdown deadline, committing 0 and not 1, and closes the producer without waiting
    past the deadline."""
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: [*_records(0, range(1)), _poison(0, 1)]}]
    stopping = _StopAfterDelivering()
    producer = DeadLetterProducer([UnansweredFuture()])
    writer = DeadLetterWriter(producer, "dead-letters", "group")
    forwarder = stopping.forwarder = Forwarder(
        consumer, TOPIC, stopping, _config(), dead_letters=writer
    )

    took, raised = _run_bounded(forwarder, EXIT_BOUND)

    assert raised is None, "a stop cut short by the deadline, like an undelivered record"
    assert took < SHUTDOWN_DEADLINE + 2
    assert consumer.commits == [{p0: 1}], "not past the unacknowledged dead letter"
    assert forwarder.metrics.dead_lettered == 0
    assert producer.close_timeouts == [0.0]
    assert consumer.closed


def test_a_stop_requested_during_a_dead_letter_wait_ends_it_at_the_deadline() -> None:
    """SIGTERM while the loop already waits for a dead letter's acknowledgement: the wait
    ends at the deadline counted from the signal, not after its own 60 s."""
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: [*_records(0, range(2)), _poison(0, 2)]}]
    forwarder: Forwarder
    stopped_at: list[float] = []

    def stop_soon() -> None:
        def stop() -> None:
            stopped_at.append(time.monotonic())
            forwarder.request_stop()

        threading.Timer(0.3, stop).start()

    producer = DeadLetterProducer([UnansweredFuture(on_first_wait=stop_soon)])
    writer = DeadLetterWriter(producer, "dead-letters", "group")
    forwarder = Forwarder(consumer, TOPIC, _accept, _config(), dead_letters=writer)

    _, raised = _run_bounded(forwarder, EXIT_BOUND)
    took = time.monotonic() - stopped_at[0]

    assert raised is None
    assert took < SHUTDOWN_DEADLINE + 2, f"exit took {took:.1f}s after the stop"
    assert consumer.commits == [{p0: 2}]


def test_after_a_stop_kafka_gets_the_time_left_and_a_failed_commit_is_not_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGTERM while a delivery is out, and the broker does not answer the commit: the commit
    and the close are given the time left before the deadline, not kafka-python's 30 s, and
    the commit is made once (by the shutdown), not once more in the loop's turn; its records
    stay uncommitted, which the WARNING says."""
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(3))}]
    consumer.commit_error = kafka_python().errors.KafkaTimeoutError("no answer")
    stopping = _StopAfterDelivering()
    writer = DeadLetterWriter(DeadLetterProducer([]), "dead-letters", "group")
    deadline = 5.0
    forwarder = stopping.forwarder = Forwarder(
        consumer, TOPIC, stopping, _config(shutdown_deadline=deadline), dead_letters=writer
    )

    _, raised = _run_bounded(forwarder, EXIT_BOUND)

    assert raised is None
    tried = consumer.commit_timeouts
    assert len(tried) == 1, f"commits tried after the stop (their timeout_ms): {tried}"
    timeout_ms = tried[0]
    assert timeout_ms is not None
    assert 0 < timeout_ms <= deadline * 1000
    assert consumer.close_timeout is not None
    assert consumer.close_timeout <= deadline * 1000
    assert "commit failed while stopping" in caplog.text
    assert "next owner of their partitions delivers them again" in caplog.text


def test_dead_letters_acknowledged_are_committed_even_when_a_later_one_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside a shutdown, a dead letter not acknowledged in time stops the forwarder (exit 1),
    but the ones acknowledged before it count: their records are committed."""
    monkeypatch.setattr(dead_lettering, "DEAD_LETTER_TIMEOUT", 0.3)
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: [_poison(0, 0), _poison(0, 1), _poison(0, 2)]}]
    producer = DeadLetterProducer([LandedFuture(), LandedFuture(), UnansweredFuture()])
    writer = DeadLetterWriter(producer, "dead-letters", "group")
    forwarder = Forwarder(consumer, TOPIC, _accept, _config(), dead_letters=writer)

    # On a thread of its own, bounded: a forwarder that let the unacknowledged dead letter
    # go would run on for ever (the script's end is an empty poll), not fail the test.
    raised: list[BaseException] = []

    def run() -> None:
        try:
            forwarder.run()
        except BaseException as exc:
            raised.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(10)
    if runner.is_alive():
        forwarder.request_stop()
        runner.join(10)
        pytest.fail("the forwarder ran on past a dead letter never acknowledged")
    assert len(raised) == 1, raised
    assert isinstance(raised[0], ForwarderError)
    assert consumer.commits == [{p0: 2}]
    assert forwarder.metrics.dead_lettered == 2
    assert "did not acknowledge 1 of 3 dead letters within 0.3s" in str(raised[0])


def _stop_during_a_call_that_fails_p1(consumer: ScriptedConsumer, log: list[object]) -> None:
    """Run the forwarder over p0's three records and p1's two: the first call asks it to stop,
    gets p0's accepted and p1's failed; p1's are accepted when retried. ``log`` gets
    ``("deliver", n)`` for each call."""
    p0, p1 = _partition(0), _partition(1)
    consumer.script = [{p0: _records(0, range(3)), p1: _records(1, range(2))}]
    forwarder: Forwarder

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        log.append(("deliver", len(messages)))
        if len(messages) < 5:
            return _accept(endpoint, messages, wait, deadline)
        forwarder.request_stop()
        # The records' order in the call is the poll's: p0's three, then p1's two.
        return [
            DeliveryReport(m, DeliveryStatus.ACCEPTED if i < 3 else DeliveryStatus.FAILED, "t", 1)
            for i, m in enumerate(messages)
        ]

    writer = DeadLetterWriter(DeadLetterProducer([]), "dead-letters", "group")
    forwarder = Forwarder(consumer, TOPIC, deliver, _config(), dead_letters=writer)
    _, raised = _run_bounded(forwarder, EXIT_BOUND)
    assert raised is None


def test_what_is_done_when_a_stop_comes_is_committed_before_the_last_deliveries() -> None:
    """The stop comes during a call that gets p0's records accepted and p1's failed. The
    shutdown commits p0's before it retries p1's: those retries poll Kafka, and a rebalance
    meanwhile (a replica joining or leaving) would make the forwarder forget p0's records
    and the partition's next owner deliver them again, a profile $add applied twice."""
    steps: list[object] = []

    class LoggingConsumer(ScriptedConsumer):
        def commit(self, offsets: dict[Any, Any], timeout_ms: int | None = None) -> None:
            super().commit(offsets, timeout_ms)
            steps.append(("commit", {tp.partition: meta.offset for tp, meta in offsets.items()}))

    _stop_during_a_call_that_fails_p1(LoggingConsumer([_partition(0), _partition(1)]), steps)

    assert steps == [
        ("deliver", 5),
        ("commit", {0: 3}),
        ("deliver", 2),
        ("commit", {1: 2}),
    ]


def test_a_first_shutdown_commit_refused_by_a_rebalance_is_tried_again_after_the_deliveries() -> (
    None
):
    """The first shutdown commit is refused at once (a rebalance under way, as in a rolling
    deploy), not left unanswered: the commit after the last deliveries is still made, or every
    record accepted would be delivered again by the partitions' next owner."""
    p0, p1 = _partition(0), _partition(1)

    class RebalancingConsumer(ScriptedConsumer):
        def commit(self, offsets: dict[Any, Any], timeout_ms: int | None = None) -> None:
            if not self.commit_timeouts:
                self.commit_timeouts.append(timeout_ms)
                raise kafka_python().errors.CommitFailedError("the group is rebalancing")
            super().commit(offsets, timeout_ms)

    consumer = RebalancingConsumer([p0, p1])
    _stop_during_a_call_that_fails_p1(consumer, [])

    assert len(consumer.commit_timeouts) == 2
    assert consumer.commits == [{p0: 3, p1: 2}]


def test_a_commit_before_a_stop_is_bounded_and_one_not_answered_is_made_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kafka-python bounds a commit only by ``request_timeout_ms`` (30 s by default): a commit
    out when a SIGTERM came held the exit that long with a broker that stopped answering. The
    loop's commits get ``COMMIT_TIMEOUT``; one not answered in time is made at the next commit
    point, the offsets still marked uncommitted."""
    p0 = _partition(0)

    class SlowBroker(ScriptedConsumer):
        def commit(self, offsets: dict[Any, Any], timeout_ms: int | None = None) -> None:
            if not self.commit_timeouts:
                self.commit_timeouts.append(timeout_ms)
                raise kafka_python().errors.KafkaTimeoutError("no answer")
            super().commit(offsets, timeout_ms)
            forwarder.request_stop()

    consumer = SlowBroker([p0])
    consumer.script = [{p0: _records(0, range(3))}]
    forwarder = Forwarder(consumer, TOPIC, _accept, _config(on_poison="stop"))

    _, raised = _run_bounded(forwarder, EXIT_BOUND)

    assert raised is None
    assert consumer.commit_timeouts == [COMMIT_TIMEOUT * 1000] * 2
    assert consumer.commits == [{p0: 3}], "made again at the next commit, and not after it"
    assert "commit not answered within 5.0s" in caplog.text
