"""The [forwarder] table: what it resolves to, and errors that name the key path."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.forwarder.config import resolve


def _config(forwarder: dict[str, Any], **transports: dict[str, Any]) -> Any:
    return config_from_mapping(
        {
            "transports": {
                "bus": {"type": "kafka", "bootstrap_servers": ["k1:9092"], "topic": "events"},
                **transports,
            },
            "forwarder": forwarder,
        }
    )


def test_source_and_http_transport_resolve_to_topic_servers_and_http_options() -> None:
    setup = resolve(
        _config(
            {"source": "bus", "transport": "direct", "dead_letter_topic": "dlq"},
            direct={"type": "buffered_http", "gzip": True, "max_queue_size": 10},
        )
    )
    assert (setup.topic, setup.bootstrap_servers) == ("events", ("k1:9092",))
    assert setup.http.gzip is True
    assert setup.forwarder.group_id == "mixpanel-forwarder"


@pytest.mark.parametrize(
    ("forwarder", "message"),
    [
        ({"source": "bus"}, "dead_letter_topic: required"),
        ({"source": "nope", "dead_letter_topic": "d"}, "forwarder.source: no transport named"),
        (
            {"source": "bus", "dead_letter_topic": "d", "consumer": {"enable_auto_commit": True}},
            "consumer.enable_auto_commit: set by the forwarder",
        ),
        ({"source": "bus", "dead_letter_topic": "d", "lingr": 1}, "forwarder.lingr: unknown key"),
        ({"source": "bus", "on_poison": "ignore"}, "forwarder.on_poison: must be one of"),
    ],
)
def test_mistakes_are_config_errors_naming_the_key(forwarder: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(_config(forwarder))


def test_source_must_be_a_kafka_transport() -> None:
    config = _config({"source": "direct", "dead_letter_topic": "d"}, direct={"type": "http"})
    with pytest.raises(ConfigError, match="must be a kafka transport"):
        resolve(config)


def test_on_poison_stop_needs_no_dead_letter_topic() -> None:
    assert resolve(_config({"source": "bus", "on_poison": "stop"})).forwarder.on_poison == "stop"


def test_repr_hides_the_consumer_table() -> None:
    setup = resolve(
        _config(
            {"source": "bus", "dead_letter_topic": "d", "consumer": {"sasl_plain_password": "pw1"}}
        )
    )
    assert "pw1" not in repr(setup)
