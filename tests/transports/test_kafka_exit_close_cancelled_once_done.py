"""The close a kafka transport registers for interpreter exit is cancelled by ``close()``, and
when a transport dropped without ``close()`` is freed: each registration is kept by ``atexit``
and ``multiprocessing`` until the process ends, so a program building transports one after
another (a worker per job) would otherwise pile up one per transport for its whole life, each run
again at exit. Against the real broker."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Callable

import pytest

import transports.kafka.transport as kafka_transport
from mixpanel_core.process_exit import at_exit
from transports.kafka import KafkaTransport

from .kafka_cases import events

pytestmark = pytest.mark.integration


class Registrations:
    """Wraps ``at_exit``: each registration made, and whether it was cancelled."""

    def __init__(self) -> None:
        self.cancelled: list[bool] = []

    def __call__(self, callback: Callable[[], None]) -> Callable[[], None]:
        cancel = at_exit(callback)
        index = len(self.cancelled)
        self.cancelled.append(False)

        def cancelled() -> None:
            self.cancelled[index] = True
            cancel()

        return cancelled


@pytest.fixture
def registrations(monkeypatch: pytest.MonkeyPatch) -> Registrations:
    made = Registrations()
    monkeypatch.setattr(kafka_transport, "at_exit", made)
    return made


def test_close_cancels_the_exit_close(
    kafka_bootstrap: str, kafka_topic: str, registrations: Registrations
) -> None:
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 5})
    transport.send(events(1, tag="closed")[0])
    assert registrations.cancelled == [False]
    assert transport.close(30) == []
    assert registrations.cancelled == [True]  # the transport is still alive here


def test_a_dropped_transport_once_freed_cancels_its_exit_close(
    kafka_bootstrap: str, kafka_topic: str, registrations: Registrations
) -> None:
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 5})
    transport.send(events(1, tag="dropped")[0])
    assert transport.flush(30) == []
    freed = weakref.ref(transport)
    del transport
    # The producer's sender thread may still hold the record's callbacks (and so the
    # transport) for a moment after its report.
    deadline = time.monotonic() + 10
    while freed() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert freed() is None
    assert registrations.cancelled == [True]
