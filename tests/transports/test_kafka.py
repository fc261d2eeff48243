"""The ``kafka`` transport against a real broker: records, headers, reports, bounds, options."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import ConfigError, TransportError
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.kafka.fixtures import read_records
from mixpanel_core.messages import Event, GroupUpdate, Message, PeopleUpdate
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import memory_client
from mixpanel_core.transport import TransportContext
from mixpanel_core.version import __version__
from mixpanel_core.wire import loads
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration


def _messages() -> list[Message]:
    client, memory = memory_client("tok")
    client.track("user-1", "Signed up", {"plan": "pro"})
    client.people_set("user-1", {"name": "Ada"})
    client.group_set("company", "acme", {"size": 10})
    return memory.messages


@pytest.fixture
def reports() -> list[DeliveryReport]:
    return []


@pytest.fixture
def transport(
    kafka_bootstrap: str, kafka_topic: str, reports: list[DeliveryReport]
) -> Iterator[KafkaTransport]:
    built = KafkaTransport.from_config(
        {"bootstrap_servers": kafka_bootstrap, "topic": kafka_topic},
        TransportContext("bus", report=reports.append),
    )
    yield built
    built.close(5)


@pytest.fixture
def transport_factory(
    kafka_bootstrap: str, kafka_topic: str, reports: list[DeliveryReport]
) -> Iterator[Callable[..., KafkaTransport]]:
    """``factory(producer_options, **keywords)``: a transport to the test's topic."""
    built: list[KafkaTransport] = []

    def factory(producer: dict[str, Any], **keywords: Any) -> KafkaTransport:
        transport = KafkaTransport(
            kafka_bootstrap, kafka_topic, producer, report=reports.append, **keywords
        )
        built.append(transport)
        return transport

    yield factory
    for transport in built:
        transport.close(5)


def test_each_message_becomes_a_keyed_record_with_endpoint_schema_and_library_headers(
    transport: KafkaTransport, kafka_bootstrap: str, kafka_topic: str
) -> None:
    messages = _messages()
    for message in messages:
        transport.send(message)
    assert transport.flush() == []

    records = sorted(read_records(kafka_bootstrap, kafka_topic, 3), key=lambda r: r.key)
    by_key = {r.key: r for r in records}
    event, person, group = messages
    assert isinstance(event, Event)
    assert isinstance(person, PeopleUpdate)
    assert isinstance(group, GroupUpdate)
    assert set(by_key) == {b"user-1", b"company:acme"}
    group_record = by_key[b"company:acme"]
    assert loads(group_record.value) == group.record
    assert dict(group_record.headers) == {
        headers.ENDPOINT: b"groups",
        headers.SCHEMA: headers.SCHEMA_VERSION.encode(),
        headers.LIBRARY: __version__.encode(),
    }
    user_records = [r for r in records if r.key == b"user-1"]
    # One identity, one partition: the event and the profile update keep their order.
    assert len({r.partition for r in user_records}) == 1
    assert [loads(r.value) for r in sorted(user_records, key=lambda r: r.offset)] == [
        event.record,
        person.record,
    ]
    assert [headers.header(r.headers, headers.ENDPOINT) for r in user_records] == [
        "track",
        "engage",
    ]


def test_messages_are_reported_accepted_once_the_broker_acknowledged_them(
    transport: KafkaTransport, reports: list[DeliveryReport]
) -> None:
    messages = _messages()
    for message in messages:
        transport.send(message)
    transport.flush()
    assert [r.status for r in reports] == [DeliveryStatus.ACCEPTED] * 3
    assert {id(r.message) for r in reports} == {id(m) for m in messages}
    assert {r.transport for r in reports} == {"bus"}


def test_flush_is_bounded_and_returns_what_a_dead_broker_never_acknowledged(
    reports: list[DeliveryReport],
) -> None:
    with EmbeddedBroker(stop_by_kill=True) as broker:
        create_topic(broker.bootstrap_servers, "lonely", 1)
        transport = KafkaTransport(
            broker.bootstrap_servers,
            "lonely",
            {"request_timeout_ms": 60_000, "delivery_timeout_ms": 120_000},
            report=reports.append,
        )
        first, second, third = _messages()
        transport.send(first)
        assert transport.flush(30) == []  # generous: a loaded machine may be slow to answer
    transport.send(second)
    transport.send(third)
    assert transport.flush(0.5) == [second, third]
    assert transport.close(0.5) == [second, third]
    # What close() gave up on is reported FAILED, once each, whatever the producer does next.
    assert [(r.message, r.status) for r in reports] == [
        (first, DeliveryStatus.ACCEPTED),
        (second, DeliveryStatus.FAILED),
        (third, DeliveryStatus.FAILED),
    ]
    assert "close()" in (reports[1].reason or "")


def test_send_fails_with_a_failed_report_when_no_broker_answers(
    reports: list[DeliveryReport],
) -> None:
    with EmbeddedBroker() as broker:
        address = broker.bootstrap_servers
    transport = KafkaTransport(
        address, "nowhere", {"max_block_ms": 300, "api_version": (2, 5)}, report=reports.append
    )
    message = _messages()[0]
    with pytest.raises(TransportError, match="could not produce to 'nowhere'"):
        transport.send(message)
    assert [(r.message, r.status) for r in reports] == [(message, DeliveryStatus.FAILED)]
    transport.close(0)


def test_send_beyond_max_unacknowledged_waits_max_block_ms_then_fails_and_reports(
    reports: list[DeliveryReport],
) -> None:
    """kafka-python 3.0 holds whatever it is given while the broker is down; the bound stops
    that, and what it refuses was never handed to the producer."""
    with EmbeddedBroker(stop_by_kill=True) as broker:
        create_topic(broker.bootstrap_servers, "held", 1)
        transport = KafkaTransport(
            broker.bootstrap_servers,
            "held",
            {"max_block_ms": 300},
            max_unacknowledged=3,
            report=reports.append,
        )
        warm, *held, refused = [m for _ in range(2) for m in _messages()][:5]
        transport.send(warm)
        assert transport.flush(30) == []
    for message in held:
        transport.send(message)  # under the bound: taken at once, broker or not
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"3 messages still waited .*max_unacknowledged"):
        transport.send(refused)
    assert time.monotonic() - started >= 0.3
    assert [(r.message, r.status) for r in reports] == [
        (warm, DeliveryStatus.ACCEPTED),
        (refused, DeliveryStatus.FAILED),
    ]
    assert "max_unacknowledged" in (reports[1].reason or "")
    assert transport.close(0) == held


def test_send_at_the_bound_waits_for_acknowledgements_while_the_broker_answers(
    transport_factory: Callable[..., KafkaTransport], reports: list[DeliveryReport]
) -> None:
    transport = transport_factory({"linger_ms": 50}, max_unacknowledged=2)
    messages = [m for _ in range(4) for m in _messages()]
    for message in messages:
        transport.send(message)
        assert len(transport.flush(0)) <= 2  # never more than the bound waits at once
    assert transport.flush(30) == []
    assert sorted(id(r.message) for r in reports) == sorted(id(m) for m in messages)
    assert {r.status for r in reports} == {DeliveryStatus.ACCEPTED}


def test_producer_table_passes_any_kafka_python_option_through(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    transport = KafkaTransport.from_config(
        {
            "bootstrap_servers": [kafka_bootstrap],
            "topic": kafka_topic,
            "producer": {"linger_ms": 7, "compression_type": "gzip", "client_id": "checkout"},
        },
        TransportContext("bus"),
    )
    try:
        config = transport._producer.config
        assert (config["linger_ms"], config["compression_type"], config["client_id"]) == (
            7,
            "gzip",
            "checkout",
        )
        assert (config["acks"], config["enable_idempotence"]) == (-1, True)
    finally:
        transport.close(5)


def test_unknown_producer_option_is_a_config_error_naming_its_key_path() -> None:
    with pytest.raises(ConfigError, match=r"transports\.bus\.producer\.lingr_ms"):
        KafkaTransport.from_config(
            {"bootstrap_servers": "127.0.0.1:1", "topic": "t", "producer": {"lingr_ms": 5}},
            TransportContext("bus"),
        )


def _refusal(compression_type: str) -> ConfigError:
    """The error of a producer table kafka-python refuses, the SASL password being hunter2."""
    with pytest.raises(ConfigError) as raised:
        KafkaTransport.from_config(
            {
                "bootstrap_servers": "127.0.0.1:1",
                "topic": "t",
                "producer": {
                    "api_version": [2, 5],
                    "compression_type": compression_type,
                    "sasl_plain_password": "hunter2",
                },
            },
            TransportContext("bus"),
        )
    error = raised.value
    assert "hunter2" not in str(error)
    assert error.__cause__ is None  # kafka-python's exception, and its values, stay out
    assert error.__suppress_context__
    return error


def test_a_value_kafka_python_refuses_is_quoted_with_its_reason_never_a_password() -> None:
    text = str(_refusal("not-a-codec"))
    assert text.startswith("transports.bus.producer: ")
    assert "Not supported codec: not-a-codec" in text


def test_a_refusal_that_would_show_a_password_names_the_keys_only() -> None:
    """kafka-python echoes the refused value; here that value is also the password."""
    text = str(_refusal("hunter2"))
    assert "not shown because it contains a password" in text
    assert "(api_version, compression_type, sasl_plain_password)" in text


def test_options_repr_hides_the_producer_table() -> None:
    from mixpanel_core.kafka.options import KafkaOptions

    options = KafkaOptions("b:9092", "t", {"sasl_plain_password": "hunter2"})  # type: ignore[arg-type]
    assert "hunter2" not in repr(options)


def test_the_kafka_entry_point_builds_the_transport_from_toml(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    config = config_from_mapping(
        {
            "transports": {
                "bus": {"type": "kafka", "bootstrap_servers": kafka_bootstrap, "topic": kafka_topic}
            }
        }
    )
    pipeline = Pipeline.from_config(config)
    try:
        transport = pipeline.transport("bus")
        assert isinstance(transport, KafkaTransport)
        assert transport.topic == kafka_topic
    finally:
        pipeline.close(5)


def test_a_record_the_broker_never_stores_is_reported_failed_by_its_future(
    reports: list[DeliveryReport],
) -> None:
    """The producer gives up on a record (here its delivery timeout runs out with the broker
    gone): the failure reaches the report through the record's future, with kafka-python's
    reason, and the record is no longer counted as waiting."""
    with EmbeddedBroker(stop_by_kill=True) as broker:
        create_topic(broker.bootstrap_servers, "gone", 1)
        transport = KafkaTransport(
            broker.bootstrap_servers,
            "gone",
            {"delivery_timeout_ms": 1500, "request_timeout_ms": 1000, "retry_backoff_ms": 50},
            report=reports.append,
        )
        warm, lost = _messages()[:2]
        transport.send(warm)
        assert transport.flush(30) == []
    transport.send(lost)
    deadline = time.monotonic() + 30
    while len(reports) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(r.message, r.status) for r in reports] == [
        (warm, DeliveryStatus.ACCEPTED),
        (lost, DeliveryStatus.FAILED),
    ]
    # Given up on, not refused: the broker may yet have stored it (review K2 saw one there).
    assert (reports[1].reason or "").startswith(
        "Kafka did not acknowledge it in time: KafkaTimeoutError"
    )
    assert "it may have been stored all the same" in (reports[1].reason or "")
    assert reports[1].maybe_applied
    assert transport.flush(0) == []
    assert transport.close(0) == []
