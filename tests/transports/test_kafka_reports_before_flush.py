"""The ``kafka`` transport makes a message's report before ``flush()`` counts it settled.

A caller that learns outcomes from reports and ``flush()``'s list (the ``send`` and
``replay-dead-letters`` commands) counts a message that is in neither as lost and sends it
again. The reporter here is slow on purpose (as a plugin writing to a file or a socket is), so
a flush that stopped waiting before the report was made returns early every time.
"""

from __future__ import annotations

import threading
import time

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from transports.kafka import KafkaTransport

from .kafka_cases import events

pytestmark = pytest.mark.integration

REPORT_TAKES = 0.05
"""Seconds each report takes: long enough that an early flush cannot miss it by luck."""


class SlowReports:
    """A reporter that takes ``REPORT_TAKES`` per report, then keeps it (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reports: list[DeliveryReport] = []

    def __call__(self, report: DeliveryReport) -> None:
        time.sleep(REPORT_TAKES)
        with self._lock:
            self.reports.append(report)

    def statuses(self) -> list[DeliveryStatus]:
        with self._lock:
            return [r.status for r in self.reports]


def test_flush_returns_nothing_only_once_every_message_has_its_accepted_report(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    reporter = SlowReports()
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, report=reporter)
    try:
        messages = events(10)
        for message in messages:
            transport.send(message)

        assert transport.flush(30) == []
        assert reporter.statuses() == [DeliveryStatus.ACCEPTED] * len(messages)
    finally:
        transport.close(5)


def test_flush_returns_nothing_only_once_every_message_has_its_failed_report() -> None:
    """The producer's failure (its errback) is held to the same order as the acknowledgement."""
    reporter = SlowReports()
    with EmbeddedBroker(stop_by_kill=True) as broker:
        create_topic(broker.bootstrap_servers, "doomed", 1)
        transport = KafkaTransport(
            broker.bootstrap_servers,
            "doomed",
            {"request_timeout_ms": 500, "delivery_timeout_ms": 1000, "retry_backoff_ms": 50},
            report=reporter,
        )
        warm, *doomed = events(4)
        transport.send(warm)
        assert transport.flush(30) == []
    try:
        # The broker is gone: the producer gives up on each after delivery_timeout_ms.
        for message in doomed:
            transport.send(message)

        assert transport.flush(30) == []
        assert reporter.statuses() == [DeliveryStatus.ACCEPTED] + [DeliveryStatus.FAILED] * 3
        assert all(
            (r.reason or "").startswith("Kafka did not acknowledge it in time")
            for r in reporter.reports[1:]
        )
    finally:
        transport.close(0)


def test_a_flush_that_times_out_returns_the_messages_whose_report_is_still_being_made(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """Settled but not yet reported is still held: the caller sees it returned or reported,
    never neither."""
    reporter = SlowReports()
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, report=reporter)
    try:
        messages = events(10)
        for message in messages:
            transport.send(message)
        # Ten reports take 0.5 s: a flush of 0.2 s ends with some of them still to be made.
        left = transport.flush(0.2)
        reported = [r.message for r in reporter.reports]
        assert left
        # A report is appended REPORT_TAKES after it starts: one that started before the
        # flush returned is not in this list yet, so the message must be in ``left``.
        assert {id(m) for m in [*left, *reported]} == {id(m) for m in messages}
        assert transport.flush(30) == []
        assert len(reporter.reports) == len(messages)
    finally:
        transport.close(5)
