"""The ``kafka`` transport against a real broker: ``flush()`` sends lingering records at once
(and lingering resumes after it), and a transport dropped without ``close()`` still delivers
or reports FAILED every message it had sent, at interpreter exit."""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap
import time

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.kafka.fixtures import read_records
from mixpanel_core.messages import Message
from mixpanel_core.testing import memory_client
from mixpanel_core.wire import loads
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration

LINGER_MS = 5_000


def events(prefix: str, count: int) -> list[Message]:
    """``count`` events whose ``$insert_id`` is ``prefix-N``."""
    client, memory = memory_client("tok")
    for n in range(count):
        client.track(f"user-{n % 7}", "Played", {"$insert_id": f"{prefix}-{n}"})
    return memory.messages


def test_flush_sends_lingering_records_at_once_then_lingering_resumes(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    reports: list[DeliveryReport] = []
    transport = KafkaTransport(
        kafka_bootstrap, kafka_topic, {"linger_ms": LINGER_MS}, report=reports.append
    )
    try:
        messages = events("flushed", 100)
        for message in messages:
            transport.send(message)
        started = time.monotonic()
        assert transport.flush(30) == []
        # Far below the linger, generous for a loaded machine.
        assert time.monotonic() - started < LINGER_MS / 1000 / 2
        assert sorted(id(r.message) for r in reports) == sorted(id(m) for m in messages)
        assert {r.status for r in reports} == {DeliveryStatus.ACCEPTED}
        # The hurry ends with flush(): a record sent afterwards lingers again.
        late = events("late", 1)
        transport.send(late[0])
        time.sleep(0.5)
        assert transport.flush(0) == late
    finally:
        transport.close(5)


DROPPED_PROGRAM = """
import gc, sys, time, weakref
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.testing import memory_client
from transports.kafka import KafkaTransport

def report(r):
    print(r.status.name, r.message.record["properties"]["$insert_id"], flush=True)

def send_and_drop(bootstrap, topic, options, exit_timeout, stop=None):
    client, memory = memory_client("tok")
    for n in range(50):
        client.track(f"user-{n % 7}", "Played", {"$insert_id": f"dropped-{n}"})
    first, *rest = memory.messages
    transport = KafkaTransport(bootstrap, topic, options, exit_timeout=exit_timeout, report=report)
    transport.send(first)
    if stop is not None:
        assert transport.flush(30) == []
        stop()
    for message in rest:
        transport.send(message)
    # The only references left are weak ones, and the producer's thread.
    return weakref.ref(transport), transport._producer._sender

mode = sys.argv[1]
if mode == "stopped":
    broker = EmbeddedBroker(stop_by_kill=True).start()
    create_topic(broker.bootstrap_servers, "gone", 1)
    options = {"request_timeout_ms": 60_000, "delivery_timeout_ms": 120_000}
    dropped, sender = send_and_drop(broker.bootstrap_servers, "gone", options, 1, broker.stop)
else:
    linger_ms = 60_000 if mode == "linger" else 200
    options = {"linger_ms": linger_ms, "delivery_timeout_ms": 120_000}
    dropped, sender = send_and_drop(sys.argv[2], sys.argv[3], options, 20)
gc.collect()
if mode == "settled":
    deadline = time.monotonic() + 30
    while dropped() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    sender.join(5)
    print("transport", "freed" if dropped() is None else "alive", flush=True)
    print("sender", "alive" if sender.is_alive() else "ended", flush=True)
# No flush, no close, no reference of ours: the interpreter exits.
"""


def run_dropped(*arguments: str) -> tuple[dict[str, str], str]:
    """Runs ``DROPPED_PROGRAM``; returns what it printed (the status reported per
    ``$insert_id``, and in mode ``settled`` the fate of the transport and its producer's
    thread), and stderr."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DROPPED_PROGRAM), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    printed = {name: status for status, name in lines if status in ("ACCEPTED", "FAILED")}
    assert len(printed) == len(lines) - 2 * (arguments[0] == "settled"), "reported twice"
    printed.update((name, fate) for name, fate in lines if name in ("transport", "sender"))
    return printed, done.stderr


def stored_insert_ids(bootstrap: str, topic: str) -> collections.Counter[str]:
    records = read_records(bootstrap, topic, 50, timeout_ms=5_000)
    return collections.Counter(loads(r.value)["properties"]["$insert_id"] for r in records)


EXPECTED = {f"dropped-{n}" for n in range(50)}


def test_a_transport_dropped_without_close_delivers_its_lingering_records_at_exit(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """The records linger far longer than the process lives: only a close at exit that
    reaches the dropped transport's producer makes them leave (or reports them)."""
    statuses, _ = run_dropped("linger", kafka_bootstrap, kafka_topic)
    stored = stored_insert_ids(kafka_bootstrap, kafka_topic)
    # Each message is in the topic or reported FAILED; what was reported ACCEPTED is there.
    assert {i for i in EXPECTED if stored[i] or statuses.get(i) == "FAILED"} == EXPECTED
    assert {i for i, s in statuses.items() if s == "ACCEPTED"} <= set(stored)
    assert set(statuses) == EXPECTED  # and nothing went unreported
    assert set(stored) == EXPECTED  # a reachable broker: all delivered within exit_timeout


def test_a_transport_dropped_without_close_reports_what_a_dead_broker_never_acknowledged() -> None:
    statuses, stderr = run_dropped("stopped")
    assert statuses == {"dropped-0": "ACCEPTED"} | {f"dropped-{n}": "FAILED" for n in range(1, 50)}
    assert "49 message(s) not acknowledged by Kafka within the 1s exit_timeout" in stderr


def test_a_dropped_transport_once_settled_is_freed_and_stops_its_producer_quietly(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """Freed on the producer's own thread after the last report: kafka-python's own clean-up
    closed the producer from there (a 1 s stall, KafkaTimeoutError, the thread left running)."""
    printed, stderr = run_dropped("settled", kafka_bootstrap, kafka_topic)
    assert (printed.pop("transport"), printed.pop("sender")) == ("freed", "ended")
    assert printed == dict.fromkeys(EXPECTED, "ACCEPTED")
    assert stored_insert_ids(kafka_bootstrap, kafka_topic) == dict.fromkeys(EXPECTED, 1)
    assert "KafkaTimeoutError" not in stderr
    assert "Exception ignored" not in stderr
