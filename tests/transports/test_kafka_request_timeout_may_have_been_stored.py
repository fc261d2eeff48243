"""Review R70 F1: a record whose request timed out (``RequestTimedOutError``: the broker got it
and was slow to answer) is reported FAILED with ``maybe_applied`` and a reason saying that it
may have been stored, for it is: the broker writes it once it gets to it. Only a refusal by
the broker (too large, ...) is "Kafka did not store it". Reported as such a refusal, with
``maybe_applied`` false, an application that sent it again applied a ``$add`` twice.

Against a broker of this test's own, frozen (SIGSTOP) while the request waits in its socket,
with retries off (kafka.md's ``enable_idempotence = false`` with ``retries = 0``) so that the
timeout is the producer's last word on the record."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.kafka.fixtures import read_records
from transports.kafka import KafkaTransport

from .kafka_cases import events

pytestmark = pytest.mark.integration

REQUEST_TIMEOUT_MS = 1_000


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test's own: freezing the session's would stall other tests."""
    with EmbeddedBroker() as started:
        create_topic(started.bootstrap_servers, "slow", 1)
        yield started


def test_a_timed_out_request_is_reported_as_maybe_stored(broker: EmbeddedBroker) -> None:
    reports: list[DeliveryReport] = []
    second_report = threading.Event()

    def report(r: DeliveryReport) -> None:
        reports.append(r)
        if len(reports) == 2:
            second_report.set()

    transport = KafkaTransport(
        broker.bootstrap_servers,
        "slow",
        {
            "enable_idempotence": False,
            "retries": 0,
            "request_timeout_ms": REQUEST_TIMEOUT_MS,
        },
        report=report,
    )
    warm, slow = events(2)
    process = broker._process  # EmbeddedBroker does not expose its pid otherwise
    assert process is not None, "the broker is running"
    try:
        transport.send(warm)  # metadata and a connection: the next request leaves at once
        assert transport.flush(30) == []
        os.kill(process.pid, signal.SIGSTOP)
        try:
            transport.send(slow)
            assert second_report.wait(30), reports
        finally:
            os.kill(process.pid, signal.SIGCONT)
        report_of_slow = reports[1]
        assert report_of_slow.message is slow
        assert report_of_slow.status is DeliveryStatus.FAILED
        reason = report_of_slow.reason or ""
        assert "RequestTimedOutError" in reason, reason
        assert "may have been stored all the same" in reason, reason
        assert "did not store it" not in reason, reason
        assert report_of_slow.maybe_applied
        # And it was: the broker, thawed, wrote the request waiting in its socket.
        stored = [r.value for r in read_records(broker.bootstrap_servers, "slow", 2)]
        assert stored == [warm.json(), slow.json()]
    finally:
        transport.close(10)
