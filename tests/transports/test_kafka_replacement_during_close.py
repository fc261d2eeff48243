"""A producer built to replace a broken one while ``close()`` runs is closed too: nothing the
transport started keeps running after its ``close()``. Against the real broker: the producer is
put in kafka-python's fatal state, the watchdog's replacement is held in its build until
``close()`` has returned, then let go."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from mixpanel_core.kafka.client_library import kafka_python
from transports.kafka import KafkaTransport

from .kafka_cases import events
from .test_kafka_broken_producer import wait_for

pytestmark = pytest.mark.integration


def test_a_replacement_built_while_close_ran_is_closed_as_well(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 5})
    building = threading.Event()
    let_go = threading.Event()
    built: list[Any] = []
    build = transport._replacement.build

    def held_build() -> Any:
        building.set()
        assert let_go.wait(60)
        built.append(build())
        return built[-1]

    transport._replacement.build = held_build
    try:
        warm, doomed = events(2, tag="closing")
        transport.send(warm)
        assert transport.flush(30) == []
        broken = transport._producer
        fatal = kafka_python().errors.KafkaError("fatal for the test")
        broken._transaction_manager.transition_to_fatal_error(fatal)
        transport.send(doomed)  # failed by the broken producer: the watchdog replaces it
        assert building.wait(30), "the broken producer was never replaced"
        assert transport.close(10) == []
    finally:
        let_go.set()
    assert wait_for(lambda: built and transport._producer is built[0], 30)
    new = built[0]
    assert wait_for(lambda: new._closed and not new._sender.is_alive(), 10), (
        "the producer built during close() is still running"
    )
