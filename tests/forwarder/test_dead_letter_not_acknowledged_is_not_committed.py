"""A poison record whose dead letter the broker has not acknowledged yet is not committed past,
against the real broker and the emulator: not at the turn that sent it, and not at a stop whose
deadline passes before the acknowledgement (the record is read again by the next owner). A dead
letter still not acknowledged after ``DEAD_LETTER_TIMEOUT`` stops the forwarder with the error,
rather than leave its partition stuck without a word.

The dead-letter producer here holds its records (``linger_ms`` of a minute), so its futures stay
pending for the whole test, as with a slow or partitioned dead-letter broker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core.config import load_config
from mixpanel_core.forwarder import build, dead_lettering
from mixpanel_core.forwarder.build import build_forwarder
from mixpanel_core.forwarder.dead_letters import DeadLetterTimeoutError
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python

from .conftest import ForwardingRig, track_event, wait_until

pytestmark = pytest.mark.integration

SHUTDOWN_DEADLINE = 2.0
EXIT_BOUND = 30.0
"""Generous for a 2 s deadline on shared cores, far below the producer's minute of linger."""


@pytest.fixture
def rig_partitions() -> int:
    """One partition: the records' offsets are the order they were produced in."""
    return 1


@pytest.fixture
def holding(rig: ForwardingRig, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The forwarder's dead-letter producers, made to hold their records, closed at the end
    (the forwarder's own close may have no time left to flush them)."""
    made: list[Any] = []

    def holding_producer(setup: Any) -> Any:
        # Reaches the broker (the topic's metadata comes at once), but sends nothing before
        # a minute has passed or it is flushed: every dead letter stays unacknowledged.
        producer = kafka_python().KafkaProducer(
            bootstrap_servers=rig.bootstrap,
            acks="all",
            linger_ms=60_000,
            client_id="mixpanel-forwarder-dead-letters",
        )
        made.append(producer)
        return producer

    monkeypatch.setattr(build, "_dead_letter_producer", holding_producer)
    yield made
    for producer in made:
        producer.close(10)


def _produce_poison_then_event(rig: ForwardingRig) -> None:
    """Offset 0 is the poison; offset 1 an event Mixpanel accepts, behind it."""
    producer = kafka_python().KafkaProducer(bootstrap_servers=rig.bootstrap, linger_ms=500)
    track = [(headers.ENDPOINT, b"track")]
    for value in (b"{not json", track_event(1, refused=-1)):
        producer.send(rig.topic, value=value, key=b"raw", headers=track)
    producer.flush(30)
    producer.close(10)


def run_in_a_thread(config: Path) -> tuple[Any, threading.Thread, list[BaseException]]:
    """The forwarder of ``config`` running on a thread of its own; what it raised, kept."""
    forwarder, client = build_forwarder(load_config(config))
    raised: list[BaseException] = []

    def run() -> None:
        try:
            forwarder.run()
        except BaseException as exc:  # handed to the test, not lost in the thread
            raised.append(exc)
        finally:
            client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return forwarder, thread, raised


def test_a_dead_letter_never_acknowledged_holds_the_commit_at_its_record(
    rig: ForwardingRig, holding: list[Any]
) -> None:
    _produce_poison_then_event(rig)
    config = rig.write_config({"shutdown_deadline": SHUTDOWN_DEADLINE, "linger": 0.1})
    forwarder, thread, raised = run_in_a_thread(config)
    wait_until(lambda: forwarder.metrics.consumed == 2 and forwarder.metrics.poison == 1, 60)
    time.sleep(1.0)  # turns in which a commit that did not wait for the dead letter happens
    assert rig.committed() == {0: None}, "nothing past the poison before its acknowledgement"

    forwarder.request_stop()
    thread.join(EXIT_BOUND)

    assert not thread.is_alive(), "the stop waited for the dead letter past its deadline"
    assert raised == [], "cut short by the deadline: a clean stop"
    assert rig.committed() == {0: None}, "the poison is read again by the next owner"
    assert forwarder.metrics.dead_lettered == 0, "counted only once acknowledged"


def test_a_dead_letter_not_acknowledged_in_time_stops_the_forwarder(
    rig: ForwardingRig, holding: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dead_lettering, "DEAD_LETTER_TIMEOUT", 1.0)  # a minute otherwise
    _produce_poison_then_event(rig)
    config = rig.write_config({"linger": 0.1})
    forwarder, thread, raised = run_in_a_thread(config)
    thread.join(EXIT_BOUND)
    if thread.is_alive():  # carried on without a word: stopped here so the test can end
        forwarder.request_stop()
        thread.join(EXIT_BOUND)

    assert [type(exc) for exc in raised] == [DeadLetterTimeoutError]
    assert "did not acknowledge 1 of 1 dead letters" in str(raised[0])
    assert rig.committed() == {0: None}, "nothing past the poison"
