"""``buffered_http`` dropped without ``close()``: what it holds is delivered, then nothing stays.

Code migrating from the official SDK often builds a client per web request and never closes
it. Each such transport must deliver what it queued (batched, retried, reported and
dead-lettered as usual), then end its sender thread and close its connections; its exit hook
goes too. The compat ``BufferedConsumer``, built the same way, must not leave its exit hook.
"""

from __future__ import annotations

import collections
import gc
import json
import multiprocessing
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core import compat, compat_consumers
from mixpanel_core.buffering import BackgroundSender
from mixpanel_core.client import Mixpanel
from mixpanel_core.compat_consumers import BufferedConsumer
from mixpanel_core.config import Config, config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.process_exit import _ExitHook
from mixpanel_core.testing import ReportCollector
from transports.buffered_http import BufferedHttpTransport

from ..subprocesses import run_python
from .test_buffered_http import make_event, transport_for

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
CLIENTS = 12
EVENTS = 25


def sender_threads() -> int:
    return sum(t.name.startswith("mixpanel-core-") for t in threading.enumerate())


def live_exit_hooks() -> int:
    gc.collect()
    return sum(isinstance(o, _ExitHook) for o in gc.get_objects())


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float = 30.0, collect: bool = True
) -> None:
    """Poll ``condition``; with ``collect``, collecting garbage each time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout} s: {what}")
        if collect:
            gc.collect()
        time.sleep(0.02)


@pytest.fixture
def closed_clients(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The ids of the ingestion clients closed during the test (their pools were released)."""
    closed: set[int] = set()
    close = IngestionClient.close

    def spy(self: IngestionClient) -> None:
        closed.add(id(self))
        close(self)

    monkeypatch.setattr(IngestionClient, "close", spy)
    return closed


def buffered_config(emulator: Emulator, **options: object) -> Config:
    table = {"type": "buffered_http", "linger": 0.05, "backoff_base": 0.01, **options}
    return config_from_mapping(
        {
            "mixpanel": {"api_host": emulator.base_url, "token": TOKEN},
            "transports": {"default": table},
        }
    )


class Dropped:
    """What a test keeps of the clients it drops: nothing that holds their senders."""

    def __init__(self) -> None:
        self.senders: list[weakref.ref[BackgroundSender]] = []
        self.threads: list[threading.Thread] = []
        self.ingestion: list[IngestionClient] = []
        self.insert_ids: list[str] = []

    def keep(self, transport: BufferedHttpTransport) -> None:
        sender = transport.sender
        self.senders.append(weakref.ref(sender))
        if sender._thread is not None:  # one that never sent opened no connection
            self.threads.append(sender._thread)
            self.ingestion.append(sender.client)

    def all_gone(self) -> bool:
        return all(ref() is None for ref in self.senders) and not any(
            t.is_alive() for t in self.threads
        )


def track_and_drop(
    config: Config, dropped: Dropped, tag: str, events: int, collector: ReportCollector | None
) -> None:
    """One web request's worth: a client built, some events tracked, no flush, no close."""
    extra = [("reports", collector)] if collector is not None else []
    client = Mixpanel(TOKEN, pipeline=Pipeline.from_config(config, extra_plugins=extra))
    for n in range(events):
        insert_id = f"{tag}-{n}"
        dropped.insert_ids.append(insert_id)
        client.track(f"user-{n % 5}", "Viewed page", {"$insert_id": insert_id})
    transport = client.pipeline.transport("default")
    assert isinstance(transport, BufferedHttpTransport)
    dropped.keep(transport)


@pytest.mark.parametrize("observed", [False, True], ids=["unobserved", "observed_by_a_plugin"])
def test_clients_dropped_without_close_deliver_everything_then_release_their_thread(
    mixpanel_emulator: Emulator, closed_clients: set[int], observed: bool
) -> None:
    """With the garbage collector off: a dropped client must be freed by its reference count
    alone (a busy process collects its long-lived objects rarely), also when a plugin reads
    reports, whose reporter must not lead back to the pipeline; reports of what the sender
    delivers after the drop still come."""
    config = buffered_config(mixpanel_emulator)
    collector = ReportCollector() if observed else None
    threads_before, hooks_before = sender_threads(), live_exit_hooks()
    dropped = Dropped()
    gc.disable()
    try:
        for c in range(CLIENTS):
            # Every fourth request tracks nothing: its transport never starts a thread.
            events = 0 if c % 4 == 3 else EVENTS
            track_and_drop(config, dropped, f"request-{c}", events, collector)
        assert len(dropped.threads) == CLIENTS - CLIENTS // 4
        wait_until(
            dropped.all_gone, "a dropped transport kept its sender or its thread", collect=False
        )
        # At most as before: a thread an earlier test left may end meanwhile.
        wait_until(
            lambda: sender_threads() <= threads_before,
            "sender threads were left running",
            collect=False,
        )
    finally:
        gc.enable()
    received = collections.Counter(mixpanel_emulator.client.insert_ids("track"))
    assert received == collections.Counter(dropped.insert_ids)  # each exactly once
    assert {id(client) for client in dropped.ingestion} <= closed_clients
    assert live_exit_hooks() <= hooks_before
    if collector is not None:
        reported = collections.Counter(
            r.message.insert_id for r in collector.reports if r.message is not None
        )
        assert reported == collections.Counter(dropped.insert_ids)
        assert {r.status for r in collector.reports} == {DeliveryStatus.ACCEPTED}


@pytest.mark.parametrize("fault", ["503", "stalled"])
def test_a_dropped_transport_that_cannot_deliver_reports_and_dead_letters_every_record(
    mixpanel_emulator: Emulator, tmp_path: Path, fault: str
) -> None:
    if fault == "503":
        mixpanel_emulator.client.fail_fraction(1.0, [503])
    else:
        mixpanel_emulator.client.stall()
    reports: list[DeliveryReport] = []
    threads_before = sender_threads()
    dropped = Dropped()

    def send_and_drop(tag: str) -> None:
        transport = transport_for(
            mixpanel_emulator,
            reports,
            retry_budget=0.3,
            read_timeout=0.2,
            dead_letter_path=str(tmp_path / f"{tag}.jsonl"),  # one writer per file
        )
        for n in range(20):
            message = make_event(tag, n)
            transport.send(message)
            dropped.insert_ids.append(message.insert_id)
        dropped.keep(transport)

    try:
        for t in range(3):
            send_and_drop(f"undeliverable-{t}")
        gc.collect()
        wait_until(dropped.all_gone, "a dropped transport kept its sender or its thread")
        wait_until(lambda: sender_threads() <= threads_before, "sender threads left running")
    finally:
        mixpanel_emulator.client.release()
    reported = collections.Counter(r.message.insert_id for r in reports if r.message is not None)
    assert reported == collections.Counter(dropped.insert_ids)  # each once, none vanished
    assert {r.status for r in reports} == {DeliveryStatus.FAILED}
    lines = [
        json.loads(line)
        for path in sorted(tmp_path.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert sorted(line["record"]["properties"]["$insert_id"] for line in lines) == sorted(
        dropped.insert_ids
    )
    assert {line["status"] for line in lines} == {"failed"}


def test_compat_clients_with_a_buffered_consumer_dropped_per_request_leave_nothing_behind(
    mixpanel_emulator: Emulator,
) -> None:
    """``Mixpanel(token, consumer=BufferedConsumer())`` per request: the consumer sends as
    the official one does (here, when ``max_size`` is reached), and, once dropped, leaves no
    exit hook registered for the life of the process."""
    # The process's one orphan thread, and its one exit hook, last as long as the process.
    compat_consumers._orphans.start()
    threads_before, hooks_before = sender_threads(), live_exit_hooks()
    expected: list[str] = []

    def one_request(r: int) -> None:
        consumer = BufferedConsumer(max_size=EVENTS, api_host=mixpanel_emulator.base_url)
        client = compat.Mixpanel(TOKEN, consumer=consumer)
        for n in range(EVENTS):
            expected.append(f"compat-{r}-{n}")
            client.track(f"user-{n % 5}", "Viewed page", {"$insert_id": expected[-1]})

    for r in range(CLIENTS):
        one_request(r)
    gc.collect()
    received = collections.Counter(mixpanel_emulator.client.insert_ids("track"))
    assert received == collections.Counter(expected)
    assert sender_threads() <= threads_before
    assert live_exit_hooks() <= hooks_before


_HELD: list[Mixpanel] = []
"""The client of the fork test, held here only: the child drops it by clearing this list (a
local of the test would stay alive in the child, whose stack is a copy of the parent's)."""


def _track_drop_and_report(queue: Any) -> None:
    client = _HELD[0]
    for n in range(10):
        client.track(f"child-{n}", "In the child", {"$insert_id": f"child-{n}"})
    _HELD.clear()
    del client
    deadline = time.monotonic() + 20
    while sender_threads() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.02)
    queue.put(sender_threads())


def test_a_fork_child_that_drops_the_inherited_client_delivers_and_ends_its_thread(
    mixpanel_emulator: Emulator,
) -> None:
    """The child's own sender (started on its first message, after the fork reset) delivers
    what the child queued and ends once the child drops the client; the parent's is intact.

    The parent sends nothing before the fork: a sender whose thread is busy at the fork stays
    alive in the child, held by that thread's copied stack (see the transport's docs)."""
    _HELD.append(Mixpanel(TOKEN, config=buffered_config(mixpanel_emulator, exit_timeout=0.0)))
    try:
        context = multiprocessing.get_context("fork")
        answer = context.Queue()
        child = context.Process(target=_track_drop_and_report, args=(answer,))
        child.start()
        left = answer.get(timeout=60)
        child.join(30)
        assert child.exitcode == 0
        assert left == 0, "the child's sender thread outlived its dropped client"
        _HELD[0].track("parent", "After the fork", {"$insert_id": "parent-0"})
        assert _HELD[0].flush(10) == []
        received = collections.Counter(mixpanel_emulator.client.insert_ids("track"))
        assert received == collections.Counter(["parent-0"] + [f"child-{n}" for n in range(10)])
    finally:
        _HELD.pop().close(5)


PROGRAM = """
import gc, sys
from mixpanel_core.client import Mixpanel
from mixpanel_core.config import config_from_mapping

def one_request():
    table = {"type": "buffered_http", "linger": 30.0, "exit_timeout": 10.0}
    config = config_from_mapping(
        {"mixpanel": {"api_host": sys.argv[1], "token": "emulator-token"},
         "transports": {"default": table}}
    )
    client = Mixpanel("emulator-token", config=config)
    for n in range(40):
        client.track(f"user-{n}", "Dropped before exit", {"$insert_id": f"exit-{n}"})

one_request()
gc.collect()
"""


def test_a_dropped_client_still_lingering_is_delivered_at_interpreter_exit(
    mixpanel_emulator: Emulator,
) -> None:
    """Dropped with records queued, the transport lives on until they are sent: the bounded
    close at exit still reaches it (here, before its 30 s linger ends)."""
    finished = run_python(PROGRAM, mixpanel_emulator.base_url)
    assert finished.returncode == 0, finished.stderr
    received = collections.Counter(mixpanel_emulator.client.insert_ids("track"))
    assert received == collections.Counter(f"exit-{n}" for n in range(40))
