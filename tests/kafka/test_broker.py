"""The embedded broker helper and the Kafka fixtures."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from mixpanel_core.kafka import broker as broker_module
from mixpanel_core.kafka.broker import (
    BOOTSTRAP_ENV_VAR,
    BrokerError,
    EmbeddedBroker,
    bootstrap_servers_or_embedded,
)
from mixpanel_core.kafka.client_library import kafka_python


def _accepts(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def _children() -> dict[int, str]:
    """This process's child processes, by pid, with their command lines (from /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The parent pid is the second field after the command name, which is in
            # parentheses and may itself hold spaces or parentheses.
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == os.getpid():
            children[int(entry.name)] = command
    return children


def test_embedded_broker_accepts_connections_until_stopped() -> None:
    with EmbeddedBroker() as broker:
        assert _accepts(broker.bootstrap_servers)
    assert not _accepts(broker.bootstrap_servers)


def test_external_bootstrap_from_environment_starts_no_broker() -> None:
    before = _children()
    with bootstrap_servers_or_embedded({BOOTSTRAP_ENV_VAR: "kafka-1:9092,kafka-2:9092"}) as servers:
        assert servers == "kafka-1:9092,kafka-2:9092"
        assert _children().keys() - before.keys() == set(), "no process was started"


def test_without_environment_an_embedded_broker_is_started_and_stopped() -> None:
    before = _children()
    with bootstrap_servers_or_embedded({}) as servers:
        assert _accepts(servers)
        started = {pid: cmd for pid, cmd in _children().items() if pid not in before}
        # The observable the test above relies on: the broker is a child process.
        assert [cmd.split()[1:2] for cmd in started.values()] == [["broker"]]
    assert not _accepts(servers)
    assert started.keys() & _children().keys() == set(), "the broker process is gone"


@pytest.mark.integration
def test_kafka_topic_fixture_creates_a_topic_with_three_partitions(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    kafka = kafka_python()
    consumer = kafka.KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        assert consumer.partitions_for_topic(kafka_topic) == {0, 1, 2}
    finally:
        consumer.close()


def _squat() -> socket.socket:
    """A listening socket on a free loopback port, as another process taking it would hold."""
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    return squatter


def test_a_given_port_held_by_another_listener_is_an_error_not_a_start() -> None:
    # Before, the helper's readiness probe connected to whoever listened on the port, so it
    # reported a broker started while the broker itself had failed to bind.
    with _squat() as squatter:
        port = squatter.getsockname()[1]
        before = _children()
        with pytest.raises(BrokerError, match=f"port {port}"):
            EmbeddedBroker(port=port).start()
        assert _children().keys() - before.keys() == set(), "the failed broker was stopped"


def test_a_chosen_port_taken_before_the_broker_binds_it_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The race: the helper picks a free port, another process takes it before the broker
    # binds it. The helper must move to a new port and start a broker that really serves.
    with _squat() as squatter:
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real_free_port = broker_module._free_port
        monkeypatch.setattr(
            broker_module, "_free_port", lambda: next(ports, None) or real_free_port()
        )
        with EmbeddedBroker() as broker:
            assert broker.port != taken
            assert broker.advertised == broker.bootstrap_servers
            kafka = kafka_python()
            consumer = kafka.KafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
            try:
                assert isinstance(consumer.topics(), set), "the broker answers metadata requests"
            finally:
                consumer.close()
