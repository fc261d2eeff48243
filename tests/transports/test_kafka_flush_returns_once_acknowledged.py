"""``flush()`` returns once every record is acknowledged, not at its timeout, also when no one
observes reports (the transport then settles each record without making a report, and that
settling must still wake the waiting ``flush()``)."""

from __future__ import annotations

import time

import pytest

from transports.kafka import KafkaTransport

from .kafka_cases import events

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


@pytest.mark.parametrize("observed", [False, True], ids=["unobserved", "observed"])
def test_flush_returns_when_the_last_record_is_acknowledged(
    kafka_bootstrap: str, kafka_topic: str, observed: bool
) -> None:
    reports: list[object] = []
    transport = KafkaTransport(
        kafka_bootstrap,
        kafka_topic,
        {"linger_ms": 200},  # still lingering when flush() begins to wait
        **({"report": reports.append} if observed else {}),
    )
    try:
        for message in events(20):
            transport.send(message)
        began = time.monotonic()
        assert transport.flush(TIMEOUT) == []
        # Acknowledged within a second or so; a flush nothing woke waits out its timeout.
        assert time.monotonic() - began < TIMEOUT / 3
    finally:
        transport.close(5)
    assert len(reports) == (20 if observed else 0)
