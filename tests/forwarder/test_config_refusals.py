"""Forwarder and Kafka configuration refused before anything connects: credentials in a broker
address (never quoted, never handed to kafka-python, which logs it), and a bad --log-level."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core.cli import main
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.forwarder.config import resolve
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client
from transports.kafka import KafkaTransport

PASSWORD = "S3CRET-in-test"
SERVERS_WITH_PASSWORD = [f"u:{PASSWORD}@127.0.0.1:1", ["127.0.0.1:1", f"u:{PASSWORD}@k:9092"]]


def _config(servers: Any) -> Any:
    return config_from_mapping(
        {
            "transports": {
                "bus": {"type": "kafka", "bootstrap_servers": servers, "topic": "events"}
            },
            "forwarder": {"source": "bus", "dead_letter_topic": "dlq"},
        }
    )


@pytest.mark.parametrize("servers", SERVERS_WITH_PASSWORD)
def test_credentials_in_a_broker_address_are_refused_by_the_forwarder_without_quoting(
    servers: Any,
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(_config(servers))
    message = str(caught.value)
    assert PASSWORD not in message
    key = "bootstrap_servers" if isinstance(servers, str) else "bootstrap_servers[1]"
    assert message.startswith(f"transports.bus.{key}: credentials in a broker address")
    assert "sasl_plain_password" in message  # where they go instead


@pytest.mark.parametrize(
    ("servers", "said"),
    [
        ("127.0.0.1:notaport", "bootstrap_servers: '127.0.0.1:notaport' has port 'notaport'"),
        ("[::1:9092", "bootstrap_servers: '[::1:9092' opens a bracket"),
        ("k1:9092,k2:99999", "bootstrap_servers: 'k2:99999' has port '99999'"),
        (["k1:9092", ":9092"], "bootstrap_servers[1]: ':9092' names no host"),
        (" , ", "bootstrap_servers: ' , ' names no broker"),
    ],
)
def test_a_malformed_broker_address_is_refused_naming_bootstrap_servers(
    servers: Any, said: str
) -> None:
    """kafka-python refused it only as a client was made, and the error named the client's
    options table ("transports.bus.producer: kafka-python refused the options: ValueError:
    not enough values to unpack"), which the user never set."""
    with pytest.raises(ConfigError) as caught:
        resolve(_config(servers))
    assert str(caught.value).startswith(f"transports.bus.{said}"), str(caught.value)


@pytest.mark.parametrize(
    "servers",
    [
        "k1",
        "k1:9092",
        "[::1]",
        "[::1]:9092",
        "::1",
        "SSL://k1:9093",
        "k1:1,k2:2",
        "my_host:9092 ",
        # "${B1},${B2}" with B2 unset: kafka-python tries the empty one and bootstraps from
        # the others (review R34).
        "k1:9092,",
        "k1:9092,,k2:9092",
        "k1: 9092",  # kafka-python reads the port with int()
        "k1:+9092",
    ],
)
def test_every_broker_address_kafka_python_reads_is_taken(servers: str) -> None:
    assert resolve(_config(servers)).bootstrap_servers == servers


@pytest.mark.parametrize("servers", SERVERS_WITH_PASSWORD)
def test_credentials_in_a_broker_address_never_reach_kafka_python(
    servers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """kafka-python logs the addresses it bootstraps from (INFO, WARNING), and "cannot reach
    Kafka at ..." quoted them: the transport is refused before its producer is built."""
    fast = {"max_block_ms": 500, "request_timeout_ms": 500}
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as caught:
        KafkaTransport(servers, "events", fast, name="bus")
    assert str(caught.value).startswith("transports.bus.bootstrap_servers")
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in caplog.text


def test_build_client_refuses_them_too_whatever_gave_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """replay-dead-letters --bootstrap-servers reaches kafka-python through build_client."""
    kafka = kafka_python()
    settings = {"bootstrap_servers": [f"u:{PASSWORD}@127.0.0.1:1"], "request_timeout_ms": 500}
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as caught:
        build_client(kafka.KafkaConsumer, settings, "forwarder.consumer", (), "replay")
    assert str(caught.value).startswith("replay: bootstrap_servers[0]: credentials")
    assert PASSWORD not in str(caught.value) + caplog.text


def test_forward_with_a_password_in_a_broker_address_is_one_line_without_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "forward.toml"
    path.write_text(
        "[transports.bus]\n"
        'type = "kafka"\n'
        f'bootstrap_servers = "u:{PASSWORD}@127.0.0.1:1"\n'
        'topic = "events"\n'
        "[forwarder]\n"
        'source = "bus"\n'
        'dead_letter_topic = "dlq"\n'
    )
    assert main(["forward", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mixpanel-core: error: transports.bus.bootstrap_servers: credentials")
    assert PASSWORD not in err


@pytest.mark.parametrize("word", ["bogus", "notset", "warn", "FATAL"])
def test_an_unknown_log_level_is_the_usual_usage_error_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], word: str
) -> None:
    """It used to be a ValueError traceback from logging, after the flag was taken; then
    logging's other names (NOTSET, WARN, FATAL) were taken, which docs/forwarder.md says are
    refused (review R68 F3)."""
    with pytest.raises(SystemExit) as exited:
        main(["forward", "--config", str(tmp_path / "none.toml"), "--log-level", word])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument --log-level: '{word}' is not a logging level; use DEBUG, INFO" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("level", ["debug", "WARNING", "Error"])
def test_log_level_names_are_taken_in_any_case(level: str) -> None:
    from mixpanel_core.forwarder.command import log_level

    assert log_level(level) == level.upper()
