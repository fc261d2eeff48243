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
            direct={"type": "buffered_http", "gzip": True, "max_queue_messages": 10},
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
        (
            {"source": "bus", "dead_letter_topic": "dead letters"},
            "dead_letter_topic: must be at most 249 characters among ASCII letters",
        ),
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


def test_strict_false_on_the_http_transport_is_refused_naming_the_key() -> None:
    """Without strict=1 Mixpanel drops invalid /import records unnamed ("imported 3 of 4"):
    the forwarder could neither deliver nor dead-letter them, and never commit past them."""
    config = _config(
        {"source": "bus", "transport": "direct", "dead_letter_topic": "d"},
        direct={"type": "buffered_http", "strict": False},
    )
    with pytest.raises(ConfigError, match=r"^transports\.direct\.strict: must stay true"):
        resolve(config)


@pytest.mark.parametrize("query", ["strict=0", "strict=", "strict=1&strict=0", "strict=true"])
@pytest.mark.parametrize("transport", [None, "direct"])
def test_an_import_url_whose_query_unsets_strict_is_refused_naming_it(
    query: str, transport: str | None
) -> None:
    """The URL's own ``strict`` is sent instead of the client's ``strict=1``: the forwarder
    resent an /import batch Mixpanel answered "imported N of M" forever (review R63 F2)."""
    document = {
        "mixpanel": {"urls": {"import": f"https://proxy.example/import?{query}&key=S3CRET"}},
        "transports": {
            "bus": {"type": "kafka", "bootstrap_servers": ["k1:9092"], "topic": "events"},
            "direct": {"type": "buffered_http"},
        },
        "forwarder": {"source": "bus", "dead_letter_topic": "d", "transport": transport},
    }
    if transport is None:
        del document["forwarder"]["transport"]
    with pytest.raises(ConfigError) as caught:
        resolve(config_from_mapping(document))
    assert str(caught.value).startswith("mixpanel.urls.import: its query sets strict to ")
    assert "S3CRET" not in str(caught.value)
    for accepted in ("strict=1&key=S3CRET", "strict=1&strict=1"):
        document["mixpanel"]["urls"]["import"] = f"https://proxy.example/import?{accepted}"
        assert resolve(config_from_mapping(document)).forwarder.source == "bus"


def test_a_dead_letter_topic_that_is_the_source_topic_is_refused_naming_both_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(_config({"source": "bus", "dead_letter_topic": "events"}))
    message = str(caught.value)
    assert message.startswith("forwarder.dead_letter_topic: 'events' is the topic")
    assert "transports.bus.topic" in message


def test_metrics_port_must_be_a_port_number_from_0_to_65535() -> None:
    def metrics_port(port: int) -> int | None:
        config = _config({"source": "bus", "dead_letter_topic": "d", "metrics_port": port})
        return resolve(config).forwarder.metrics_port

    for port in (70000, 65536, -5):
        with pytest.raises(ConfigError, match=rf"metrics_port: must be a port number .*not {port}"):
            metrics_port(port)
    assert [metrics_port(0), metrics_port(65535)] == [0, 65535]


def test_the_http_transport_must_be_of_an_http_type() -> None:
    """A kafka transport has no HTTP options: naming one would silently use the defaults."""
    config = _config(
        {"source": "bus", "transport": "other", "dead_letter_topic": "d"},
        other={"type": "kafka", "bootstrap_servers": "k2:9092", "topic": "t"},
    )
    with pytest.raises(
        ConfigError,
        match=r"^forwarder\.transport: transport 'other' is of type 'kafka'; it must be an "
        "http or buffered_http transport",
    ):
        resolve(config)
