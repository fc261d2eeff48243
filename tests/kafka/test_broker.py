"""The embedded broker helper and the Kafka fixtures."""

from __future__ import annotations

import socket

import pytest

from mixpanel_core.kafka.broker import (
    BOOTSTRAP_ENV_VAR,
    EmbeddedBroker,
    bootstrap_servers_or_embedded,
)
from mixpanel_core.kafka.client_library import kafka_python


def _accepts(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def test_embedded_broker_accepts_connections_until_stopped() -> None:
    with EmbeddedBroker() as broker:
        assert _accepts(broker.bootstrap_servers)
    assert not _accepts(broker.bootstrap_servers)


def test_external_bootstrap_from_environment_starts_no_broker() -> None:
    with bootstrap_servers_or_embedded({BOOTSTRAP_ENV_VAR: "kafka-1:9092,kafka-2:9092"}) as servers:
        assert servers == "kafka-1:9092,kafka-2:9092"


def test_without_environment_an_embedded_broker_is_started_and_stopped() -> None:
    with bootstrap_servers_or_embedded({}) as servers:
        assert _accepts(servers)
    assert not _accepts(servers)


@pytest.mark.integration
def test_kafka_topic_fixture_creates_a_topic_with_three_partitions(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    kafka = kafka_python()
    consumer = kafka.KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        assert consumer.partitions_for_topic(kafka_topic) == {0, 1, 2}
    finally:
        consumer.close()
