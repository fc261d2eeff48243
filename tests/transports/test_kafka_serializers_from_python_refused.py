"""A ``key_serializer`` or ``value_serializer`` passed from Python (a callable, which a file could
not give) is refused like any option the transport decides: accepted, it would rewrite the
record's key or value, which the transport writes itself (the key keeps one identity's messages
on one partition; the forwarder reads the value as the wire record)."""

from __future__ import annotations

import pytest

from mixpanel_core.errors import ConfigError
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration


def _upper(data: bytes) -> bytes:
    return data.upper()


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("key_serializer", "writes the record's key itself"),
        ("value_serializer", "writes the record's value itself"),
    ],
)
def test_a_serializer_callable_from_python_is_refused_naming_the_key(
    kafka_bootstrap: str, kafka_topic: str, key: str, reason: str
) -> None:
    with pytest.raises(
        ConfigError, match=rf"^transports\.bus\.producer\.{key}: not allowed here: .*{reason}"
    ):
        KafkaTransport(kafka_bootstrap, kafka_topic, {key: _upper}, name="bus")
