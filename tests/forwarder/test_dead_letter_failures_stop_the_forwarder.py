"""A dead letter that cannot be written stops the forwarder, outside a shutdown, saying why.

Its record is neither delivered nor kept anywhere, so its offset must not be committed and
nothing after it either: going on would leave the partition stuck behind it with no word of
why (docs/forwarder.md, *Dead letters*). Two ways the dead-letter topic fails: its broker does
not answer before the dead letter is sent, or the producer fails the dead letter it took.
Unit tests with the scripted consumer of ``test_loop`` and producers that fail so.
"""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core.forwarder import dead_lettering
from mixpanel_core.forwarder.config import ForwarderConfig, ForwarderError
from mixpanel_core.forwarder.dead_letters import DeadLetterTimeoutError, DeadLetterWriter
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.kafka.client_library import kafka_python

from .test_loop import TOPIC, ScriptedConsumer, _partition, _records
from .test_loop_stopping import _accept, _poison, _run_bounded

EXIT_BOUND = 10.0


class UnreachableBroker:
    """A producer whose broker never answers: it never learns the topic's partitions."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {"max_block_ms": 300}
        self.sent = 0

    def partitions_for(self, topic: str) -> Any:
        raise kafka_python().errors.KafkaTimeoutError("no metadata")

    def send(self, topic: str, key: Any, value: Any, headers: Any) -> Any:
        self.sent += 1
        raise AssertionError("sent without the topic's metadata")

    def close(self, timeout: float) -> None:
        pass


class FailedFuture:
    """A dead letter the producer gave up on (kafka-python: done, failed)."""

    is_done = True

    def get(self, timeout: float | None = None) -> object:
        raise kafka_python().errors.TopicAuthorizationFailedError("not allowed")


class RefusingProducer:
    def send(self, topic: str, key: Any, value: Any, headers: Any) -> Any:
        return FailedFuture()

    def close(self, timeout: float) -> None:
        pass


def _config() -> ForwarderConfig:
    return ForwarderConfig(
        source="bus", dead_letter_topic="dead-letters", linger=0.0, log_interval=0.0
    )


def test_a_dead_letter_topic_that_does_not_answer_stops_the_forwarder_before_its_record() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: [*_records(0, range(2)), _poison(0, 2), *_records(0, range(3, 5))]}]
    producer = UnreachableBroker()
    writer = DeadLetterWriter(producer, "dead-letters", "group")
    forwarder = Forwarder(consumer, TOPIC, _accept, _config(), dead_letters=writer)

    _, raised = _run_bounded(forwarder, EXIT_BOUND)

    assert isinstance(raised, DeadLetterTimeoutError), raised
    assert "did not take the dead letter of events[0]@2" in str(raised)
    assert all(commit[p0] <= 2 for commit in consumer.commits), consumer.commits
    assert consumer.closed


def test_a_dead_letter_the_producer_failed_stops_the_forwarder_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Were the failure taken for a slow acknowledgement, the stop would come only after this,
    # saying the topic did not answer in time: the producer's own error is the one to say.
    monkeypatch.setattr(dead_lettering, "DEAD_LETTER_TIMEOUT", 1.0)
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: [*_records(0, range(2)), _poison(0, 2), *_records(0, range(3, 5))]}]
    writer = DeadLetterWriter(RefusingProducer(), "dead-letters", "group")
    forwarder = Forwarder(consumer, TOPIC, _accept, _config(), dead_letters=writer)

    _, raised = _run_bounded(forwarder, EXIT_BOUND)

    assert isinstance(raised, ForwarderError), raised
    assert "TopicAuthorizationFailedError" in str(raised)
    assert all(commit[p0] <= 2 for commit in consumer.commits), consumer.commits
    assert forwarder.metrics.dead_lettered == 0
