"""A ``fork()`` child of a transport whose producer was found broken (and not replaced yet)
builds one producer of its own and sends through it: the parent's broken producer is the
parent's to replace. Carrying the parent's verdict over, the child took its brand-new producer
for broken, built another in its place (one more wait for a broker, and a warning about a
producer that never failed). Against the real broker."""

from __future__ import annotations

import os
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.kafka.client_library import kafka_python
from transports.kafka import KafkaTransport
from transports.kafka.watchdog import WATCHDOG

from .kafka_cases import events
from .test_kafka_broken_producer import wait_for

pytestmark = pytest.mark.integration


def _child(transport: KafkaTransport, builds: list[int]) -> int:
    message = events(1, tag="child")[0]
    transport.send(message)
    if transport.flush(30):
        return 2
    if len(builds) != 1:
        return 3  # the child's own producer was replaced as if it were the broken one
    return 4 if transport.close(10) else 0


def test_a_forked_child_of_a_broken_producer_builds_one_producer_of_its_own(
    kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No watchdog looks: the parent's broken producer stays in place until the fork.
    monkeypatch.setattr(WATCHDOG, "_look_at_all", lambda now: None)
    reports: list[DeliveryReport] = []
    transport = KafkaTransport(
        kafka_bootstrap, kafka_topic, {"linger_ms": 5}, report=reports.append
    )
    try:
        warm, doomed = events(2, tag="parent")
        transport.send(warm)
        assert transport.flush(30) == []
        transport._producer._transaction_manager.transition_to_fatal_error(
            kafka_python().errors.KafkaError("fatal for the test")
        )
        transport.send(doomed)  # failed by the fatal producer: the failure marks it broken
        assert wait_for(lambda: len(reports) == 2, 30), reports
        assert reports[1].status is DeliveryStatus.FAILED
        assert transport._broken is not None
        builds: list[int] = []
        build = transport._replacement.build

        def counted() -> Any:
            builds.append(os.getpid())
            return build()

        transport._replacement.build = counted
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(transport, builds)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0  # 3: the child built a second producer
    finally:
        transport.close(10)
