"""pytest fixtures for Kafka: one broker per session and a fresh topic per test.

``read_records`` reads a topic back, for assertions.

``kafka_bootstrap`` is ``$MIXPANEL_CORE_KAFKA_BOOTSTRAP`` when set, else an embedded broker
started for the session. A missing broker is a failure, never a skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import bootstrap_servers_or_embedded
from mixpanel_core.kafka.client_library import kafka_python

TEST_TOPIC_PARTITIONS = 3


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the session's broker (external or embedded)."""
    with bootstrap_servers_or_embedded() as servers:
        yield servers


@pytest.fixture
def kafka_topic_factory(kafka_bootstrap: str) -> Callable[..., str]:
    """Call ``factory(partitions=3)`` for another new, uniquely named topic."""

    def factory(partitions: int = TEST_TOPIC_PARTITIONS, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        create_topic(kafka_bootstrap, name, partitions)
        return name

    return factory


@pytest.fixture
def kafka_topic(kafka_topic_factory: Callable[..., str]) -> str:
    """A new topic with three partitions, used by this test only."""
    return kafka_topic_factory()


def read_records(bootstrap: str, topic: str, count: int, timeout_ms: int = 10_000) -> list[Any]:
    """The first ``count`` records of ``topic`` (fewer if none arrives for ``timeout_ms``)."""
    consumer = kafka_python().KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=timeout_ms,
    )
    records: list[Any] = []
    try:
        for record in consumer:
            records.append(record)
            if len(records) == count:
                break
    finally:
        consumer.close()
    return records
