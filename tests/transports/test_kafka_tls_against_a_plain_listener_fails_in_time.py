"""A ``kafka`` transport told to speak TLS to a listener that speaks plain Kafka fails its
build within its bound, naming the likely cause, instead of holding the caller for good.

kafka-python bounds its bootstrap (``bootstrap_timeout_ms``) but not the TLS handshake, which
waits for an answer the plain listener never sends: the first ``track()``, which builds the
transport, was still waiting after 150 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

import transports.kafka.producer as kafka_producer
from mixpanel_core.errors import ConfigError, TransportError
from mixpanel_core.kafka.broker import EmbeddedBroker
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration

TLS = {"security_protocol": "SSL", "ssl_check_hostname": False, "max_block_ms": 1500}


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as started:
        yield started


def test_a_tls_producer_against_a_plain_listener_is_refused_within_its_bound(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka_producer, "BUILD_MARGIN", 1.0)
    started = time.monotonic()
    with pytest.raises(TransportError, match="security_protocol matches the listener"):
        KafkaTransport(broker.bootstrap_servers, "t", TLS, name="tls")
    took = time.monotonic() - started
    # The bound: bootstrap_timeout_ms (max_block_ms, 1.5 s) and the 1 s margin.
    assert 2.0 <= took < 20, took

    # The build given up was abandoned, its sockets closed: it leaves no thread behind, and
    # the next (a later track(), the watchdog's tries) waits its own bound rather than being
    # refused for one still running. Before, each given up kept its thread for good.
    assert [t for t in threading.enumerate() if t.name == "mixpanel-core-kafka-build-tls"] == []
    started = time.monotonic()
    with pytest.raises(TransportError) as again:
        KafkaTransport(broker.bootstrap_servers, "t", TLS, name="tls")
    assert time.monotonic() - started >= 2.0
    assert "an earlier build of it was given up and still waits" not in str(again.value)


def test_a_negative_bootstrap_timeout_is_refused_as_read(broker: EmbeddedBroker) -> None:
    """A negative ``bootstrap_timeout_ms`` is refused before any build, naming the key (review
    R70 F4), not a bound below zero blaming ``security_protocol``; kafka-python took it and
    gave up at once, said as "cannot reach Kafka"."""
    options = {"bootstrap_timeout_ms": -1, "max_block_ms": 5000}
    with pytest.raises(ConfigError, match="bootstrap_timeout_ms: must be 0 or more"):
        KafkaTransport(broker.bootstrap_servers, "t", options, name="negative")


def test_a_plain_producer_is_still_built_and_delivers(broker: EmbeddedBroker) -> None:
    """The build on its own thread hands back the same producer: it produces."""
    transport = KafkaTransport(broker.bootstrap_servers, "t", {"max_block_ms": 5000})
    try:
        producer = transport._producer
        future = producer.send("t", b"{}")
        assert future.get(timeout=20).topic == "t"
    finally:
        transport.close(10)
