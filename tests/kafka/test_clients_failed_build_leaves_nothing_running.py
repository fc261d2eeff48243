"""A consumer whose build fails (no broker answers) leaves no thread or socket behind.

kafka-python's ``KafkaConsumer`` raises from its constructor with its network client (an IO
thread and four fds) still running: a process that builds again, as one waiting for its
broker does, gained a thread and four fds at each attempt."""

from __future__ import annotations

import gc
import logging
import os
import threading

import pytest

from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client

pytestmark = pytest.mark.integration

ATTEMPTS = 3


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.timeout(60)
def test_failed_consumer_builds_leave_no_thread_and_no_fd(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # kafka-python's log records of the refused connections carry its exceptions, whose
    # tracebacks hold the half-made consumer: pytest keeps every record (a program's handlers
    # write and drop them).
    caplog.set_level(logging.CRITICAL + 1, logger="kafka")
    # Port 1 of loopback: nothing listens there, so no broker answers.
    settings = {"bootstrap_servers": "127.0.0.1:1", "bootstrap_timeout_ms": 300, "group_id": "g"}
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    refusals = []
    for _ in range(ATTEMPTS):
        # Not kept: a kept exception's traceback holds the half-made consumer, as it would in
        # any program (pytest.raises keeps it).
        try:
            build_client(kafka_python().KafkaConsumer, settings, "forwarder.consumer", [], "f")
        except TransportError as refused:
            refusals.append(str(refused))
    assert len(refusals) == ATTEMPTS
    assert all("cannot reach Kafka" in refusal for refusal in refusals), refusals
    # kafka-python's closed network client leaves its wake-up socket pair to the collector,
    # in reference cycles, as a closed consumer does.
    gc.collect()
    left = [t.name for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert left == []
    # Four fds a leaked attempt; one or two may come and go with the rest of the process.
    assert open_fds() - fds_before < ATTEMPTS, (fds_before, open_fds())
