"""The ``kafka`` transport at interpreter exit and after ``fork()``, against a real broker:
nothing still held at exit goes unreported, and a forked child sends its own messages through
a producer of its own while the parent keeps delivering (and reporting) its own."""

from __future__ import annotations

import collections
import multiprocessing
import os
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


def events(prefix: str, count: int) -> list[Message]:
    """``count`` events whose ``$insert_id`` is ``prefix-N``."""
    client, memory = memory_client("tok")
    for n in range(count):
        client.track(f"user-{n % 7}", "Played", {"$insert_id": f"{prefix}-{n}"})
    return memory.messages


def insert_ids(bootstrap: str, topic: str, count: int) -> collections.Counter[str]:
    records = read_records(bootstrap, topic, count, timeout_ms=5_000)
    return collections.Counter(loads(r.value)["properties"]["$insert_id"] for r in records)


EXIT_PROGRAM = """
import sys
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.testing import memory_client
from transports.kafka import KafkaTransport

def report(r):
    print(r.status.name, flush=True)

broker = EmbeddedBroker().start()
create_topic(broker.bootstrap_servers, "exit", 1)
transport = KafkaTransport(
    broker.bootstrap_servers, "exit", {"linger_ms": 5}, exit_timeout=0.5, report=report
)
client, memory = memory_client("tok")
for n in range(200):
    client.track("u", "Played", {"n": n})
first, *rest = memory.messages
transport.send(first)
assert transport.flush(30) == []
broker.stop()
for message in rest:
    transport.send(message)
# No flush, no close: the broker is gone and the interpreter exits.
"""


def test_messages_still_unacknowledged_at_exit_are_reported_failed_and_counted() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_PROGRAM)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert collections.Counter(done.stdout.split()) == {"ACCEPTED": 1, "FAILED": 199}
    assert "199 message(s) not acknowledged by Kafka within the 0.5s exit_timeout" in done.stderr
    # Only the transport's bounded close ran: kafka-python's own exit hook (which raised
    # KafkaTimeoutError here, having reported nothing) was removed.
    assert "KafkaTimeoutError" not in done.stderr
    assert seconds < 60


_TRANSPORT: KafkaTransport
_MESSAGES: list[Message]


def _send_and_end() -> None:
    for message in _MESSAGES:
        _TRANSPORT.send(message)
    # No close: the child ends through os._exit, which skips atexit.


def test_a_multiprocessing_child_delivers_what_it_sent_when_it_ends(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """Built before the fork, as in a pre-fork server; the records linger far longer than the
    child lives, so only the close the child runs as it ends can make them leave."""
    global _TRANSPORT, _MESSAGES
    options = {"linger_ms": 60_000, "delivery_timeout_ms": 120_000}
    _TRANSPORT = KafkaTransport(kafka_bootstrap, kafka_topic, options, exit_timeout=20)
    _MESSAGES = events("child", 50)
    child = multiprocessing.get_context("fork").Process(target=_send_and_end)
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert insert_ids(kafka_bootstrap, kafka_topic, 50) == {f"child-{n}": 1 for n in range(50)}
    _TRANSPORT.close(5)


def _child(transport: KafkaTransport, reports: list[DeliveryReport]) -> int:
    """What the forked child does; its exit code says what went wrong."""
    del reports[:]  # the parent's reports, copied by the fork
    mine = events("child", 20)
    for message in mine:
        transport.send(message)
    if transport.flush(30):
        return 2
    # Only the child's own messages, each reported once (in partition order, not send order).
    if sorted((id(r.message), r.status.value) for r in reports) != sorted(
        (id(m), DeliveryStatus.ACCEPTED.value) for m in mine
    ):
        return 3
    if transport.close(5):
        return 4
    return 0 if len(reports) == len(mine) else 5  # close reported none of the parent's


def test_a_forked_child_sends_its_own_messages_and_leaves_the_parents_to_the_parent(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """Forked while the parent's messages linger unacknowledged in its producer."""
    reports: list[DeliveryReport] = []
    transport = KafkaTransport(
        kafka_bootstrap, kafka_topic, {"linger_ms": 1_000}, report=reports.append
    )
    parents = events("parent", 5)
    for message in parents:
        transport.send(message)
    assert len(transport.flush(0)) == 5  # still lingering at the fork
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _child(transport, reports)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert transport.flush(30) == []
    assert transport.close(5) == []
    assert sorted(id(r.message) for r in reports) == sorted(id(m) for m in parents)
    assert {r.status for r in reports} == {DeliveryStatus.ACCEPTED}
    expected = [f"parent-{n}" for n in range(5)] + [f"child-{n}" for n in range(20)]
    assert insert_ids(kafka_bootstrap, kafka_topic, 25) == collections.Counter(expected)


def test_a_forked_child_that_sent_nothing_flushes_and_closes_at_once(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {"linger_ms": 1_000})
    for message in events("parent", 3):
        transport.send(message)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            started = time.monotonic()
            left = [transport.flush(10), transport.close(10)]
            code = 0 if left == [(), ()] and time.monotonic() - started < 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert transport.close(30) == []
    assert insert_ids(kafka_bootstrap, kafka_topic, 3) == {f"parent-{n}": 1 for n in range(3)}
