"""A stop while the dead-letter topic's broker is unreachable, against the real broker and the
emulator: the forwarder exits by its shutdown deadline (not after the producer's 60 s), commits
nothing past the record whose dead letter never landed, and a restart dead-letters it."""

from __future__ import annotations

import collections
import signal
import socket
import threading
import time
from typing import Any

import pytest

from mixpanel_core.config import load_config
from mixpanel_core.forwarder import build
from mixpanel_core.forwarder.build import build_forwarder
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python

from .conftest import ForwardingRig, track_event, wait_until

pytestmark = pytest.mark.integration

SHUTDOWN_DEADLINE = 2.0
EXIT_BOUND = 20.0
"""Generous for a 2 s deadline on shared cores, far below the producer's 60 s max_block_ms."""


@pytest.fixture
def rig_partitions() -> int:
    """One partition: the records' offsets are the order they were produced in."""
    return 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _unreachable_producer(setup: Any) -> Any:
    """A dead-letter producer whose only broker is a port nothing listens on.

    The source's brokers are the dead-letter topic's in the configuration, so this swaps the
    producer the forwarder builds. ``api_version`` is given so that building it does not wait
    for the broker; everything else is what ``build`` sets.
    """
    return kafka_python().KafkaProducer(
        bootstrap_servers=f"127.0.0.1:{_closed_port()}",
        api_version=(2, 8),
        acks="all",
        enable_idempotence=True,
        client_id="mixpanel-forwarder-dead-letters",
    )


def test_a_stop_while_the_dead_letter_broker_is_unreachable_ends_by_the_deadline(
    rig: ForwardingRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = rig.produce_events(3, prefix="before")
    config = rig.write_config({"shutdown_deadline": SHUTDOWN_DEADLINE, "linger": 0.1})
    monkeypatch.setattr(build, "_dead_letter_producer", _unreachable_producer)
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
    rig.wait_for_delivered(3)
    wait_until(lambda: rig.committed() == {0: 3}, 30)
    # The poison (offset 3) and the two records after it in one batch: the forwarder reads
    # them in one poll, whatever the load, before the poison's dead letter holds it. From two
    # producers, a slow second one left the poison read alone, and consumed stayed at 4.
    producer = kafka_python().KafkaProducer(bootstrap_servers=rig.bootstrap, linger_ms=500)
    track = [(headers.ENDPOINT, b"track")]
    for value in (b"{not json", track_event(4, refused=-1), track_event(5, refused=-1)):
        producer.send(rig.topic, value=value, key=b"raw", headers=track)
    producer.flush(30)
    producer.close(10)
    after = ["id-4", "id-5"]
    wait_until(lambda: forwarder.metrics.consumed == 6, 30)
    time.sleep(0.5)  # inside the wait for the dead-letter topic's metadata

    started = time.monotonic()
    forwarder.request_stop()
    thread.join(EXIT_BOUND)
    took = time.monotonic() - started

    assert not thread.is_alive(), f"still running {took:.1f}s after the stop"
    assert took < SHUTDOWN_DEADLINE + 5, f"exit took {took:.1f}s after the stop"
    assert raised == [], "cut short by the deadline, like a delivery: a clean stop"
    assert rig.committed() == {0: 3}, "nothing past the poison, whose dead letter never landed"
    assert sorted(rig.delivered_insert_ids()) == sorted(before)
    assert forwarder.metrics.dead_lettered == 0

    # With its broker back, the next forwarder dead-letters the poison and delivers the rest.
    process = rig.start(config)
    rig.wait_for_delivered(5)
    [letter] = rig.dead_letters(1)
    wait_until(lambda: rig.committed() == {0: 6}, 30)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    assert dict(letter.headers)["dead-letter-source-offset"] == b"3"
    counts = collections.Counter(rig.delivered_insert_ids())
    assert sorted(counts) == sorted(before + after)
    assert set(counts.values()) == {1}


@pytest.mark.parametrize("max_block_ms", [0, 60_000])
def test_a_producer_that_never_blocks_still_dead_letters_once_it_knows_the_topic(
    kafka_bootstrap: str, kafka_topic: str, max_block_ms: int
) -> None:
    # The dead-letter producer takes the source transport's producer options: one set not to
    # block (max_block_ms = 0) once made every dead letter a timeout before it was tried.
    kafka = kafka_python()
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_bootstrap, max_block_ms=max_block_ms)
    try:
        deadline = time.monotonic() + 10
        while not _knows(producer, kafka_topic):  # as after the first dead letter
            assert time.monotonic() < deadline, "the producer never learned the topic"
            time.sleep(0.1)
        raw = collections.namedtuple("raw", "topic partition offset key value headers timestamp")
        record = raw("source", 0, 7, None, b'{"event": "x"}', [], 0)
        writer = DeadLetterWriter(producer, kafka_topic, "group")
        future = writer.send(record, "delivery", "rejected by Mixpanel")
        assert future.get(timeout=10).topic == kafka_topic
        assert producer.config["max_block_ms"] == max_block_ms, "the option is put back"
    finally:
        producer.close(timeout=5)


def _knows(producer: Any, topic: str) -> bool:
    try:
        return bool(producer.partitions_for(topic))
    except kafka_python().errors.KafkaTimeoutError:  # max_block_ms = 0: not known yet
        return False
