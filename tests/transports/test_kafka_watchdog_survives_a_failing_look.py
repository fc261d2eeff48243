"""One kafka transport's failing look does not end the watchdog thread, which looks after
every kafka transport of the process: a producer of another transport that kafka-python puts
in its fatal error state afterwards is still replaced without a ``send()`` to find it.
Against the real broker."""

from __future__ import annotations

import threading
import time

import pytest

from mixpanel_core.kafka.client_library import kafka_python
from transports.kafka import KafkaTransport

from .kafka_cases import events

pytestmark = pytest.mark.integration


def test_a_failing_look_at_one_transport_spares_the_watch_of_another(
    kafka_bootstrap: str, kafka_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    failing = KafkaTransport(kafka_bootstrap, kafka_topic, name="failing")
    watched = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 5}, name="watched")
    looked = threading.Event()

    def look(now: float) -> None:
        looked.set()
        raise RuntimeError("a look that fails, for the test")

    failing._watch = look  # type: ignore[method-assign]
    try:
        warm, after = events(2, tag="watched")
        watched.send(warm)
        assert watched.flush(30) == []
        # Only once the watchdog met the failing look: it must still be looking after that.
        assert looked.wait(10)
        first = watched._producer
        first._transaction_manager.transition_to_fatal_error(
            kafka_python().errors.KafkaError("fatal for the test")
        )
        deadline = time.monotonic() + 20  # the watchdog looks once a second
        while watched._producer is first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watched._producer is not first
        watched.send(after)
        assert watched.flush(30) == []
        assert "transport 'failing': the producer watchdog failed" in caplog.text
    finally:
        failing.close(10)
        watched.close(10)
