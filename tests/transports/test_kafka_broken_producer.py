"""The ``kafka`` transport when its producer can no longer deliver, against a real broker it
kills, restarts and stalls itself: the broken producer is replaced (what it held reported FAILED,
once), a record held past ``delivery_timeout_ms`` is reported without ``close()``, a transport
built with no broker up fails within ``max_block_ms``, and a SIGTERM with the documented
handler reports everything."""

from __future__ import annotations

import collections
import contextlib
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import transports.kafka.health as producer_health
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker, _free_port
from mixpanel_core.messages import Message
from mixpanel_core.testing import memory_client
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration

QUICK = {
    "request_timeout_ms": 1000,
    "delivery_timeout_ms": 2500,
    "retry_backoff_ms": 50,
    "reconnect_backoff_max_ms": 200,
    "max_block_ms": 5000,
    "linger_ms": 5,
}
"""A producer that gives up within seconds, so each test stays short."""


def events(prefix: str, count: int) -> list[Message]:
    client, memory = memory_client("tok")
    for n in range(count):
        client.track(f"user-{n % 7}", "Played", {"$insert_id": f"{prefix}-{n}"})
    return memory.messages


class Reports:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[DeliveryReport] = []

    def __call__(self, report: DeliveryReport) -> None:
        with self.lock:
            self.items.append(report)

    def of(self, messages: list[Message]) -> list[DeliveryStatus]:
        wanted = {m.insert_id for m in messages}
        with self.lock:
            return [r.status for r in self.items if r.message.insert_id in wanted]

    def counts(self) -> collections.Counter[str]:
        with self.lock:
            return collections.Counter(r.message.insert_id for r in self.items)


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    started = EmbeddedBroker().start()
    create_topic(started.bootstrap_servers, "t", 1)
    yield started
    started.stop()


def send_until_accepted(
    transport: KafkaTransport, reports: Reports, prefix: str, seconds: float
) -> list[Message]:
    """Send one message every 0.2 s until one is reported ACCEPTED, or ``seconds`` pass."""
    sent: list[Message] = []
    deadline = time.monotonic() + seconds
    for message in events(prefix, int(seconds / 0.2) + 1):
        if time.monotonic() > deadline:
            break
        with contextlib.suppress(TransportError):  # reported FAILED: counted below
            transport.send(message)
        sent.append(message)
        if DeliveryStatus.ACCEPTED in reports.of(sent):
            break
        time.sleep(0.2)
    return sent


def assert_each_reported_once(transport: KafkaTransport, reports: Reports, sent: list[Message]):
    assert transport.close(10) == []
    counts = reports.counts()
    assert {m.insert_id: counts[m.insert_id] for m in sent} == {m.insert_id: 1 for m in sent}


def test_a_producer_in_a_fatal_state_after_a_broker_restart_is_replaced(
    broker: EmbeddedBroker,
) -> None:
    """Killed and restarted under load, the broker answers the idempotent producer's request
    for a producer id with an error kafka-python holds fatal: that producer fails every
    record from then on. The transport replaces it, and messages are accepted again."""
    reports = Reports()
    transport = KafkaTransport(broker.bootstrap_servers, "t", QUICK, report=reports)
    before = events("before", 3000)
    sent_before: list[Message] = []
    stop = threading.Event()

    def keep_sending() -> None:
        for message in before:
            if stop.is_set():
                return
            sent_before.append(message)
            with contextlib.suppress(TransportError):
                transport.send(message)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    assert wait_for(lambda: len(reports.items) >= 200, 15)
    broker._process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    broker._process.wait()  # type: ignore[union-attr]
    stop.set()
    sender.join(30)
    time.sleep(1)
    restarted = EmbeddedBroker(port=broker.port).start()
    try:
        create_topic(restarted.bootstrap_servers, "t", 1)
        after = send_until_accepted(transport, reports, "after", 20)
        assert DeliveryStatus.ACCEPTED in reports.of(after), collections.Counter(
            r.reason for r in reports.items if r.status is DeliveryStatus.FAILED
        ).most_common(3)
        assert transport.flush(10) == []
        assert_each_reported_once(transport, reports, sent_before + after)
    finally:
        restarted.stop()


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` (SIGSTOP), returning once every thread of it has stopped.

    Each thread stops when it next runs: on a loaded machine the broker's threads still ran
    for milliseconds after ``send_signal`` returned, long enough to store and acknowledge a
    record sent meanwhile (its state, read from ``/proc``, still "R")."""
    process.send_signal(signal.SIGSTOP)
    tasks = Path(f"/proc/{process.pid}/task")

    def state(task: Path) -> str:
        try:
            # "pid (name) state ...": the name may hold spaces and parentheses.
            return (task / "stat").read_text().rpartition(")")[2].split()[0]
        except FileNotFoundError:  # the thread ended since the listing
            return "T"

    assert wait_for(lambda: all(state(task) == "T" for task in tasks.iterdir()), 10)


def through_a_stall(
    broker: EmbeddedBroker, reports: Reports, count: int, gap: float
) -> tuple[KafkaTransport, list[Message], list[Message]]:
    """A transport that delivered one message, then ``count`` more sent ``gap`` s apart while
    the broker is stopped (SIGSTOP) until each is reported: expired by kafka-python
    (delivery_timeout_ms, 2.5 s), or held behind an expired batch and FAILED by a replacement;
    the broker runs again, for a second, on return."""
    transport = KafkaTransport(broker.bootstrap_servers, "t", QUICK, report=reports)
    warm = events("warm", 1)
    transport.send(warm[0])
    assert transport.flush(10) == []
    process = broker._process
    assert process is not None
    stop(process)
    try:
        stalled = events("stalled", count)
        for message in stalled:
            transport.send(message)
            time.sleep(gap)
        assert wait_for(lambda: len(reports.of(stalled)) == len(stalled), 15)
    finally:
        process.send_signal(signal.SIGCONT)
    time.sleep(1)
    return transport, warm, stalled


def test_a_producer_that_lost_its_producer_id_after_a_stall_is_replaced(
    broker: EmbeddedBroker,
) -> None:
    """A broker stalled past ``request_timeout_ms`` makes batches already sent expire;
    kafka-python then drops the producer id and never asks for another: it holds every later
    record, sending and expiring none. The transport replaces it: what it held during the
    stall is reported FAILED without any close() (``through_a_stall`` waits for that: without
    the replacement it times out there), and later messages are accepted. The messages sent
    just after the stall are reported once each, whichever way they go: accepted by the
    replacement (the usual case), or refused at once while a replacement tried too early
    failed, and reported FAILED."""
    reports = Reports()
    transport, warm, stalled = through_a_stall(broker, reports, 50, gap=0.02)
    held = events("held", 20)
    for message in held:
        # A replacement the watchdog tried while the broker was still stopped failed: until
        # its next try (each second), sends are refused at once, each reported FAILED (under
        # load in CI, the second after the stall was not always enough).
        with contextlib.suppress(TransportError):
            transport.send(message)
    # Reported (FAILED by the replacement, or ACCEPTED by its successor) without close().
    assert wait_for(lambda: len(reports.of(held)) == len(held), 15), transport.flush(0)
    after = send_until_accepted(transport, reports, "after", 15)
    assert DeliveryStatus.ACCEPTED in reports.of(after)
    assert_each_reported_once(transport, reports, warm + stalled + held + after)


def test_records_held_past_the_delivery_timeout_are_reported_without_close(
    broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound of the transport's own: with the producer-id check left out, the same stuck
    producer is found by the age of the oldest record it holds (``delivery_timeout_ms`` plus
    ``max_block_ms`` plus ``STUCK_MARGIN``), and replaced."""
    lost_producer_id = producer_health.lost_producer_id
    monkeypatch.setattr(producer_health, "STUCK_MARGIN", 1.0)
    monkeypatch.setattr(producer_health, "lost_producer_id", lambda producer: False)
    reports = Reports()
    # One record, so one batch, sent and expired: the producer id is lost with it. Of several,
    # a loaded machine may send the first alone (linger_ms is 5 ms); the rest waited behind it,
    # neither sent nor expired, until the watchdog replaced the producer during the stall, and
    # the held messages below went to the healthy new one: ACCEPTED within milliseconds.
    transport, warm, stalled = through_a_stall(broker, reports, 1, gap=0.0)
    assert lost_producer_id(transport._producer), [r.reason for r in reports.items]
    held = events("held", 20)
    started = time.monotonic()
    for message in held:
        transport.send(message)
    # delivery_timeout_ms 2.5 s + max_block_ms 5 s + 1 s, found at a look once a second
    # (about 9.5 s measured): 20 s leaves room for a loaded machine.
    assert wait_for(lambda: len(reports.of(held)) == len(held), 20), transport.flush(0)
    assert time.monotonic() - started >= 3.0
    reasons = {r.reason for r in reports.items if r.message in held}
    # The bound the patched margin gives (2.5 s + 5 s + 1 s), not the 12.5 s of the real one.
    assert any("more than 8.5s (delivery_timeout_ms" in (r or "") for r in reasons), reasons
    after = send_until_accepted(transport, reports, "after", 15)
    assert DeliveryStatus.ACCEPTED in reports.of(after)
    assert_each_reported_once(transport, reports, warm + stalled + held + after)


def test_a_transport_built_with_no_broker_up_fails_within_max_block_ms() -> None:
    """kafka-python waits ``bootstrap_timeout_ms`` (30 s) to bootstrap whatever
    ``max_block_ms`` is: the transport bounds that wait by ``max_block_ms``."""
    address = f"127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(TransportError, match="cannot reach Kafka"):
        KafkaTransport(address, "t", {"max_block_ms": 1500})
    assert time.monotonic() - started < 10


SIGTERM_PROGRAM = """
import signal, sys, time
from mixpanel_core.testing import memory_client
from transports.kafka import KafkaTransport

signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # as the docs say

def report(r):
    print(r.status.name, flush=True)

transport = KafkaTransport(sys.argv[1], "t", {"linger_ms": 60_000}, exit_timeout=10, report=report)
client, memory = memory_client("tok")
for n in range(100):
    client.track("u", "Played", {"n": n})
for message in memory.messages:
    transport.send(message)
print("SENT", flush=True)
time.sleep(60)
"""


def test_sigterm_with_the_documented_handler_reports_every_message(
    broker: EmbeddedBroker,
) -> None:
    """What the docs say about SIGTERM: the records linger (60 s) when the process is told to
    stop; with the handler that calls ``sys.exit``, the exit close delivers and reports them."""
    docs = Path(__file__).parents[2] / "docs" / "transports" / "kafka.md"
    text = docs.read_text()
    assert "SIGTERM" in text
    assert "(buffered_http.md)" in text
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SIGTERM_PROGRAM), broker.bootstrap_servers],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "SENT"
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert collections.Counter(out.split()) == {"ACCEPTED": 100}
