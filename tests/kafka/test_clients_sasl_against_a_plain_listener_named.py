"""A client told to log in with SASL to a running broker whose listener takes plain Kafka fails
as one no broker answers for (kafka-python's own timeout): the error names the settings to
check, as the TLS case does, rather than only "cannot reach Kafka" (found by a review)."""

from __future__ import annotations

import pytest

from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client

pytestmark = pytest.mark.integration

PASSWORD = "hunter2-sasl-password"


@pytest.mark.timeout(60)
def test_a_sasl_producer_against_a_plain_listener_names_the_settings(kafka_bootstrap: str) -> None:
    settings = {
        "bootstrap_servers": kafka_bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "app",
        "sasl_plain_password": PASSWORD,
        "bootstrap_timeout_ms": 1000,
    }
    with pytest.raises(TransportError) as refused:
        build_client(
            kafka_python().KafkaProducer, settings, "transports.bus.producer", settings, "bus"
        )
    message = str(refused.value)
    assert message.startswith(f"bus cannot reach Kafka at {kafka_bootstrap}: ")
    assert message.endswith(
        "; if a broker is up there, check transports.bus.producer.security_protocol and the sasl_ "
        "and ssl_ settings against its listener"
    )
    assert PASSWORD not in message
