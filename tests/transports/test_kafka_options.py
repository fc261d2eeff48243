"""Kafka option errors name the key path and the rule: the ``kafka`` transport's own keys, the
kinds of kafka-python options, what kafka-python refuses (quoted, unless it would show a
password), and the consumer options ``replay-dead-letters`` borrows from ``[forwarder]``."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core.commands.replay import Replay, ReplayOptions
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.options import client_options
from mixpanel_core.transport import TransportContext
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration


def build(options: dict[str, Any]) -> KafkaTransport:
    return KafkaTransport.from_config(options, TransportContext("bus"))


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("bootstrap_servers", [], "must name at least one broker"),
        ("bootstrap_servers", "", "must name at least one broker"),
        ("bootstrap_servers", ["h:1", " "], "must name .* none of them empty"),
        ("topic", "", "must not be empty"),
        ("max_unacknowledged", 0, "must be greater than 0"),
        ("flush_timeout", -1.0, "must be 0 or more"),
        ("close_timeout", -1.0, "must be 0 or more"),
        ("exit_timeout", -0.5, "must be 0 or more"),
    ],
)
def test_a_transport_option_out_of_range_is_a_config_error_naming_key_and_rule(
    kafka_bootstrap: str, key: str, value: object, rule: str
) -> None:
    options = {"bootstrap_servers": kafka_bootstrap, "topic": "t", key: value}
    with pytest.raises(ConfigError, match=rf"^transports\.bus.{key}: {rule}"):
        build(options)


def test_the_constructor_checks_the_same_rules() -> None:
    with pytest.raises(ConfigError, match=r"^transports\.kafka.max_unacknowledged: must be"):
        KafkaTransport("127.0.0.1:1", "t", max_unacknowledged=0)


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("batch_size", "big", r"must be a number \(kafka-python's default is 16384\), not a str"),
        ("linger_ms", "5", "must be a number"),
        ("enable_idempotence", "yes", "must be true or false"),
        ("client_dns_lookup", 1, "must be a string"),
        ("acks", "bogus", 'must be one of 0, 1, -1, "all"'),
        ("security_protocol", "sasl_ssl", 'must be one of "PLAINTEXT", "SSL", "SASL_PLAINTEXT"'),
        ("sasl_mechanism", "BOGUS", 'must be one of "AWS_MSK_IAM", "GSSAPI"'),
    ],
)
def test_a_producer_option_of_the_wrong_kind_is_refused_before_any_send(
    kafka_bootstrap: str, key: str, value: object, rule: str
) -> None:
    options = {"bootstrap_servers": kafka_bootstrap, "topic": "t", "producer": {key: value}}
    with pytest.raises(ConfigError, match=rf"^transports\.bus\.producer\.{key}: {rule}"):
        build(options)


def test_a_sasl_mechanism_registered_with_kafka_python_is_taken() -> None:
    """The check follows kafka-python's own list, which a user may add to (review R34)."""
    from kafka.net.sasl import SASL_MECHANISMS, register_sasl_mechanism
    from kafka.net.sasl.plain import SaslMechanismPlain

    known = kafka_python().KafkaProducer.DEFAULT_CONFIG
    producer = {"sasl_mechanism": "CUSTOM-PLAIN"}
    with pytest.raises(ConfigError, match="sasl_mechanism: must be one of"):
        client_options(producer, known, "transports.bus.producer")
    register_sasl_mechanism("CUSTOM-PLAIN", SaslMechanismPlain)
    try:
        assert client_options(producer, known, "transports.bus.producer") == producer
    finally:
        del SASL_MECHANISMS["CUSTOM-PLAIN"]


def test_an_option_kafka_python_refuses_is_a_config_error_not_an_unreachable_broker(
    kafka_bootstrap: str,
) -> None:
    """kafka-python's KafkaConfigurationError is a KafkaError, as its connection errors are."""
    options = {"bootstrap_servers": kafka_bootstrap, "topic": "t", "producer": {"acks": 0}}
    with pytest.raises(ConfigError) as raised:
        build(options)
    text = str(raised.value)
    assert text.startswith("transports.bus.producer: kafka-python refused the options: ")
    assert "enable_idempotence=True is incompatible with user-provided acks=0" in text
    assert "cannot reach" not in text


def replay_config(bootstrap: str, consumer: dict[str, Any]) -> dict[str, Any]:
    return {
        "mixpanel": {"token": "tok", "api_host": "http://127.0.0.1:1"},
        "transports": {"bus": {"type": "kafka", "bootstrap_servers": bootstrap, "topic": "mp"}},
        "forwarder": {"source": "bus", "dead_letter_topic": "dl", "consumer": consumer},
    }


@pytest.mark.parametrize(
    ("consumer", "expected"),
    [
        ({"sesion_timeout_ms": 6000}, "forwarder.consumer.sesion_timeout_ms: not a kafka-python"),
        ({"session_timeout_ms": "6s"}, "forwarder.consumer.session_timeout_ms: must be a number"),
        ({"auto_offset_reset": "bogus"}, "forwarder.consumer.auto_offset_reset: must be one of"),
        (
            {"isolation_level": "bogus"},
            "forwarder.consumer: kafka-python refused the options: "
            "KafkaConfigurationError: Unrecognized isolation_level",
        ),
    ],
)
def test_replay_names_the_forwarder_consumer_key_path_and_the_rule(
    kafka_bootstrap: str, consumer: dict[str, Any], expected: str
) -> None:
    settings = {**consumer, "sasl_plain_password": "CPASSxyz"}
    config = config_from_mapping(replay_config(kafka_bootstrap, settings), environ={})
    replay = Replay(config, ReplayOptions(topic="dl", dry_run=True))
    with pytest.raises(ConfigError) as raised:
        replay.run()
    assert str(raised.value).startswith(expected)
    assert "CPASSxyz" not in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        # A password with a [ that kafka-python cannot parse: it logged the URL whole, at
        # ERROR, on every reconnection (review R62 F1).
        ("proxy_url", "socks5://proxyuser:Kp9xQz7W[x@127.0.0.1:1080", "not shown"),
        ("proxy_url", "proxyuser:Kp9xQz7W@127.0.0.1:1080", "not shown"),  # no scheme
        ("proxy_url", "socks5://proxyuser:Kp9xQz7W@127.0.0.1", "not shown"),  # no port
        ("socks5_proxy", "socks5://proxyuser:Kp9xQz7W@127.0.0.1:99999", "not shown"),
        ("proxy_url", "socks5://proxyuser:Kp9xQz7W@127.0.0.1:0", "not shown"),
        # The password's first part read as the port, the rest as a path, query or fragment.
        ("proxy_url", "socks5://proxyuser:4821/Kp9xQz7W@127.0.0.1:1080", "not shown"),
        ("proxy_url", "socks5://proxyuser:4821?Kp9xQz7W@127.0.0.1:1080", "not shown"),
        ("proxy_url", "socks5://proxyuser:4821#Kp9xQz7W@127.0.0.1:1080", "not shown"),
        ("proxy_url", "socks4://proxyuser:Kp9xQz7W@127.0.0.1:1080", "its scheme one of http, "),
        ("proxy_url", 1080, r"a string \(not int\)"),
    ],
)
def test_a_proxy_url_kafka_python_cannot_connect_through_is_refused_unquoted(
    kafka_bootstrap: str, key: str, value: object, rule: str
) -> None:
    options = {"bootstrap_servers": kafka_bootstrap, "topic": "t", "producer": {key: value}}
    with pytest.raises(ConfigError, match=rf"^transports\.bus\.producer\.{key}: must be a URL "):
        build(options)
    with pytest.raises(ConfigError, match=rule) as raised:
        client_options({key: value}, kafka_python().KafkaConsumer.DEFAULT_CONFIG, "forwarder.c")
    assert "Kp9xQz7W" not in str(raised.value)


def test_a_proxy_url_kafka_python_connects_through_is_taken() -> None:
    known = kafka_python().KafkaProducer.DEFAULT_CONFIG
    for url in (
        "socks5://u:pw@proxy:1080",
        "socks5h://proxy:1080/",
        "http://u:pw@[::1]:3128",
        "SOCKS5://u%40corp:pw@proxy:1080",
    ):
        assert client_options({"proxy_url": url}, known, "p") == {"proxy_url": url}
