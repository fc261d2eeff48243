"""A TOML boolean is not a number for a kafka-python option, nor a number a boolean: Python
counts ``True`` as 1, so ``acks = true`` would quietly mean ``acks = 1`` (stored by the leader
alone, where the durable default is every in-sync replica) and ``enable_idempotence = 1`` would
pass for a boolean. Both are refused naming the key and the rule."""

from __future__ import annotations

import pytest

from mixpanel_core.errors import ConfigError
from mixpanel_core.transport import TransportContext
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("acks", True, 'must be one of 0, 1, -1, "all"'),
        ("acks", False, 'must be one of 0, 1, -1, "all"'),
        ("enable_idempotence", 1, "must be true or false"),
        ("enable_idempotence", 0, "must be true or false"),
    ],
)
def test_a_boolean_for_a_number_or_a_number_for_a_boolean_is_refused(
    kafka_bootstrap: str, kafka_topic: str, key: str, value: object, rule: str
) -> None:
    options = {"bootstrap_servers": kafka_bootstrap, "topic": kafka_topic, "producer": {key: value}}
    with pytest.raises(ConfigError, match=rf"^transports\.bus\.producer\.{key}: {rule}"):
        KafkaTransport.from_config(options, TransportContext("bus"))
