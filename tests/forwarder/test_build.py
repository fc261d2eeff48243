"""Building the forwarder against the real broker: producer options kafka-python refuses are a
ConfigError naming the table they came from, quoting kafka-python unless that would show a
password, and never a "cannot reach Kafka"."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.forwarder.build import build_forwarder

pytestmark = pytest.mark.integration

PASSWORD = "hunter2-sasl-password"


def _refusal(kafka_bootstrap: str, producer: dict[str, Any]) -> str:
    """The ConfigError building a forwarder whose source transport has ``producer``."""
    config = config_from_mapping(
        {
            "mixpanel": {"token": "emulator-token"},
            "transports": {
                "bus": {
                    "type": "kafka",
                    "bootstrap_servers": kafka_bootstrap,
                    "topic": "events",
                    "producer": producer,
                },
            },
            "forwarder": {"source": "bus", "dead_letter_topic": "dead-letters"},
        },
        environ={},
    )
    with pytest.raises(ConfigError) as caught:
        build_forwarder(config)
    assert caught.value.__cause__ is None, "kafka-python's exception, and its values, stay out"
    assert caught.value.__suppress_context__
    return str(caught.value)


def test_an_option_kafka_python_refuses_is_a_config_error_quoting_it(
    kafka_bootstrap: str,
) -> None:
    message = _refusal(
        kafka_bootstrap, {"compression_type": "bogus", "sasl_plain_password": PASSWORD}
    )
    assert message.startswith("transports.bus.producer: kafka-python refused the options: ")
    assert "Not supported codec: bogus" in message
    assert PASSWORD not in message


def test_options_at_odds_with_idempotence_are_a_config_error_not_cannot_reach_kafka(
    kafka_bootstrap: str,
) -> None:
    """kafka-python raises a KafkaError here (KafkaConfigurationError), yet no connection
    failed: the fix is in the configuration."""
    message = _refusal(kafka_bootstrap, {"retries": 0})
    assert message.startswith("transports.bus.producer: ")
    assert "incompatible with user-provided retries=0" in message
    assert "cannot reach" not in message


def test_a_refusal_that_would_show_a_password_is_withheld(kafka_bootstrap: str) -> None:
    message = _refusal(
        kafka_bootstrap, {"compression_type": PASSWORD, "sasl_plain_password": PASSWORD}
    )
    assert PASSWORD not in message
    assert "not shown because it contains a password" in message
    assert "compression_type, sasl_plain_password" in message


def test_a_misspelt_plugin_is_said_before_any_kafka_client_is_made() -> None:
    """With the broker down too, the user was told "cannot reach Kafka" after the bootstrap
    bound (31 s), not of the typo."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = config_from_mapping(
        {
            "mixpanel": {"token": "emulator-token"},
            "plugins": {"enabled": ["mixpanel_limit"]},
            "transports": {
                "bus": {
                    "type": "kafka",
                    "bootstrap_servers": f"127.0.0.1:{closed_port}",
                    "topic": "events",
                },
            },
            "forwarder": {"source": "bus", "dead_letter_topic": "dead-letters"},
        },
        environ={},
    )
    with pytest.raises(ConfigError) as caught:
        build_forwarder(config)
    assert str(caught.value).startswith("plugins.enabled: "), str(caught.value)
    assert "mixpanel_limit" in str(caught.value)
