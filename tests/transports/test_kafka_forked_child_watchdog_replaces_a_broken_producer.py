"""In a ``fork()`` child the watchdog thread (which did not survive the fork) is started again
with the child's own producer: a producer of the child's that kafka-python puts in its fatal
error state is replaced without another ``send()`` to find it. Without the watchdog, the child's
transport would keep a producer that fails everything until its next send. Against the real
broker."""

from __future__ import annotations

import os
import time

import pytest

from mixpanel_core.kafka.client_library import kafka_python
from transports.kafka import KafkaTransport

from .kafka_cases import events

pytestmark = pytest.mark.integration

REPLACED_WITHIN = 20.0
"""Seconds the child waits for the replacement: the watchdog looks once a second."""


def _child(transport: KafkaTransport) -> int:
    warm, after = events(2, tag="child")
    transport.send(warm)  # the child's first send: its own producer, and its own watchdog
    if transport.flush(30):
        return 2
    first = transport._producer
    # What a broker's fatal answer leaves behind (kafka-python's own transition). Nothing is
    # sent after it: only the watchdog can find the producer broken.
    first._transaction_manager.transition_to_fatal_error(
        kafka_python().errors.KafkaError("fatal for the test")
    )
    deadline = time.monotonic() + REPLACED_WITHIN
    while transport._producer is first:
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.05)
    transport.send(after)
    if transport.flush(30):
        return 4
    return 5 if transport.close(10) else 0


def test_a_forked_childs_broken_producer_is_replaced_by_its_watchdog(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 5})
    transport.send(events(1, tag="parent")[0])
    assert transport.flush(30) == []
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _child(transport)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # 3: the child's producer was never replaced
    assert transport.close(10) == []
