"""A ``fork()`` child does not inherit its parent's failed build of a replacement producer: once
it has a producer of its own and that one breaks, its next ``send()`` builds another at once
rather than refusing the message with the parent's old "no new one could be built yet" (what a
transport does while its own builds fail). Against the real broker; the parent's build is made
to fail once, as when no broker answered."""

from __future__ import annotations

import os
from typing import Any

import pytest

from mixpanel_core.errors import TransportError
from transports.kafka import KafkaTransport
from transports.kafka.watchdog import WATCHDOG

from .kafka_cases import events

pytestmark = pytest.mark.integration


def _child(transport: KafkaTransport) -> int:
    first, after = events(2, tag="child")
    transport.send(first)  # the child's own producer
    if transport.flush(30):
        return 2
    own = transport._producer
    transport._broken = "was found broken by the test"  # as a failure or the watchdog
    try:
        transport.send(after)
    except TransportError:
        return 3  # refused with the parent's build failure
    if transport._producer is own or transport.flush(30):
        return 4
    return 5 if transport.close(10) else 0


def test_a_forked_child_replaces_its_broken_producer_despite_the_parents_failed_build(
    kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WATCHDOG, "_look_at_all", lambda now: None)  # only send() replaces
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 5})
    build = transport._replacement.build
    failures = [TransportError("no broker answered, for the test")]

    def build_failing_once() -> Any:
        if failures:
            raise failures.pop()
        return build()

    transport._replacement.build = build_failing_once
    try:
        transport._broken = "was found broken by the test"
        with pytest.raises(TransportError, match="no new one could be built yet"):
            transport.send(events(1, tag="refused")[0])
        assert transport._replacement.build_failure is not None
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(transport)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0  # 3: refused with the parent's failure
    finally:
        transport.close(10)
