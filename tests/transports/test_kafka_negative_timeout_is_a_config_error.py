"""Review R70 F4: a negative kafka-python timeout in ``producer`` (``max_block_ms``,
``request_timeout_ms``, ``bootstrap_timeout_ms``, ...) is a ``ConfigError`` naming the key and
the rule, even with the broker up and answering. kafka-python took them: a negative
``max_block_ms`` or ``bootstrap_timeout_ms`` made it give up on that broker at once, a negative
``request_timeout_ms`` after 30 s, each said as "cannot reach Kafka" (kept for a broker that
does not answer), which sent the operator to the network rather than to the key."""

from __future__ import annotations

import math
import time

import pytest

from mixpanel_core.errors import ConfigError
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.options import client_options
from mixpanel_core.transport import TransportContext
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "key",
    ["max_block_ms", "request_timeout_ms", "bootstrap_timeout_ms", "delivery_timeout_ms"],
)
def test_a_negative_timeout_names_the_key_against_a_live_broker(
    kafka_bootstrap: str, kafka_topic: str, key: str
) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as refused:
        KafkaTransport(kafka_bootstrap, kafka_topic, {key: -5}, name="bus")
    assert str(refused.value) == f"transports.bus.producer.{key}: must be 0 or more"
    assert time.monotonic() - started < 5  # refused as read, before any wait for a broker


def test_a_negative_timeout_from_a_configuration_table(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    options = {
        "bootstrap_servers": kafka_bootstrap,
        "topic": kafka_topic,
        "producer": {"linger_ms": 5, "max_block_ms": -1},
    }
    with pytest.raises(ConfigError, match=r"^transports\.bus\.producer\.max_block_ms: must be 0"):
        KafkaTransport.from_config(options, TransportContext("bus"))


def test_zero_is_taken_and_nan_refused() -> None:
    """0 is a timeout (no wait); NaN is no number of milliseconds, refused like a negative."""
    known = kafka_python().KafkaProducer.DEFAULT_CONFIG
    assert client_options({"linger_ms": 0}, known, "p") == {"linger_ms": 0}
    with pytest.raises(ConfigError, match=r"^p\.request_timeout_ms: must be 0 or more$"):
        client_options({"request_timeout_ms": math.nan}, known, "p")
