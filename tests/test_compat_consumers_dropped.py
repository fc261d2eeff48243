"""``BufferedConsumer`` freed while holding records: they are still delivered, or logged.

Code migrating from the official SDK often builds ``Mixpanel(token, consumer=BufferedConsumer())``
per web request and never calls ``flush()``. The official consumer then loses what it held,
silently; ours hands it to one thread of the process, which sends it with the consumer's own
settings and logs at ERROR, with the count, what it cannot deliver. What that thread has not
sent when the process exits is sent at exit, and a ``fork()`` child has its own thread.
"""

from __future__ import annotations

import collections
import gc
import logging
import multiprocessing
import re
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from mixpanel_core import compat, compat_buffers
from mixpanel_core.compat import ServiceAccountCredentials
from mixpanel_core.compat_buffers import Buffers
from mixpanel_core.compat_consumers import BufferedConsumer
from mixpanel_core.emulator import Emulator
from mixpanel_core.emulator.client import EmulatorClient
from mixpanel_core.emulator.config import EmulatorError
from mixpanel_core.process_exit import _ExitHook

from .subprocesses import run_python

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
REQUESTS = 12
EVENTS = 7  # fewer than max_size: nothing is sent before the consumer is dropped


@pytest.fixture(autouse=True)
def _orphan_thread_started() -> None:
    """The orphan thread and its one exit hook (which logs the drops it has not logged yet)
    last as long as the process: started before a test counts exit hooks."""
    compat_buffers.orphan_thread.start()


def live_exit_hooks() -> int:
    gc.collect()
    return sum(isinstance(o, _ExitHook) for o in gc.get_objects())


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition``, collecting garbage each time (a consumer may be in a cycle)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout} s: {what}")
        gc.collect()
        time.sleep(0.02)


class _Request:
    """A web request's state that refers to itself: only the garbage collector frees it."""

    def __init__(self, client: compat.Mixpanel) -> None:
        self.client = client
        self.me = self


def track_and_drop(base_url: str, r: int, expected: list[str]) -> weakref.ref[Buffers]:
    """One web request's worth: a client with its own BufferedConsumer, no flush(). Returns
    what holds its records, weakly: alive while they are kept in memory."""
    consumer = BufferedConsumer(max_size=50, api_host=base_url, retry_backoff_factor=0.01)
    client = compat.Mixpanel(TOKEN, consumer=consumer)
    for n in range(EVENTS):
        expected.append(f"request-{r}-{n}")
        client.track(f"user-{n}", "Viewed page", {"$insert_id": expected[-1]})
    client.people_set(f"user-{r}", {"plan": "pro"})
    if r % 2:
        _Request(client)
    return weakref.ref(consumer._held)


def test_consumers_dropped_per_request_holding_records_deliver_each_record_once(
    mixpanel_emulator: Emulator,
) -> None:
    """Freed by reference counting or, in a cycle, by the garbage collector; each exit hook
    goes once its records are sent, so none is left for the life of the process."""
    hooks_before = live_exit_hooks()
    expected: list[str] = []
    for r in range(REQUESTS):
        track_and_drop(mixpanel_emulator.base_url, r, expected)
    gc.collect()

    mixpanel_emulator.client.wait_for_records(len(expected), "track", timeout=30)
    wait_until(lambda: live_exit_hooks() <= hooks_before, "an exit hook outlived its records")
    received = collections.Counter(mixpanel_emulator.client.insert_ids("track"))
    assert received == collections.Counter(expected)  # every one, exactly once
    people = [r["$distinct_id"] for r in mixpanel_emulator.client.records("engage")]
    assert sorted(people) == sorted(f"user-{r}" for r in range(REQUESTS))


def test_freeing_a_consumer_sends_nothing_on_the_thread_that_frees_it(
    mixpanel_emulator: Emulator,
) -> None:
    """The garbage collector may free it inside any lock: handing over must not wait for
    Mixpanel (here stalled); the records go once it answers."""
    mixpanel_emulator.client.stall()
    expected: list[str] = []
    try:
        started = time.monotonic()
        track_and_drop(mixpanel_emulator.base_url, 1, expected)  # in a cycle
        gc.collect()
        assert time.monotonic() - started < 2.0
    finally:
        mixpanel_emulator.client.release()
    mixpanel_emulator.client.wait_for_records(len(expected), "track", timeout=30)
    assert collections.Counter(mixpanel_emulator.client.insert_ids("track")) == (
        collections.Counter(expected)
    )


SERVICE_ACCOUNT_SECRET = "sa-secret-never-logged"
IMPORT_SECRET = "import-secret-never-logged"


def test_a_dropped_consumer_that_cannot_deliver_logs_the_count_at_error_without_secrets(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    mixpanel_emulator.client.fail_fraction(1.0, [503])
    caplog.set_level(logging.ERROR, logger="mixpanel_core.compat_consumers")
    hooks_before = live_exit_hooks()

    def one_request() -> None:
        consumer = BufferedConsumer(
            max_size=50,
            api_host=mixpanel_emulator.base_url,
            retry_limit=1,
            retry_backoff_factor=0.01,
            credentials=ServiceAccountCredentials("sa-user", SERVICE_ACCOUNT_SECRET, "12345"),
        )
        client = compat.Mixpanel(TOKEN, consumer=consumer)
        for n in range(EVENTS):
            client.track(f"user-{n}", "Viewed page")
        for n in range(3):
            client.import_data(None, f"user-{n}", "Old", 1_700_000_000, api_secret=IMPORT_SECRET)

    one_request()
    gc.collect()

    def logged() -> bool:
        return any("not delivered" in r.getMessage() for r in caplog.records)

    wait_until(logged, "the undelivered records were not logged")
    (record,) = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.name == "mixpanel_core.compat_consumers"  # the name logging is set up by
    message = record.getMessage()
    assert f"{EVENTS + 3} record(s) not delivered after the consumer was freed" in message
    assert "503" in message
    assert SERVICE_ACCOUNT_SECRET not in caplog.text
    assert IMPORT_SECRET not in caplog.text
    accepted = mixpanel_emulator.client.stats()["accepted"]
    assert (accepted["track"], accepted["import"]) == (0, 0)
    # Logged and dropped: nothing is kept, nor tried again at exit.
    wait_until(lambda: live_exit_hooks() <= hooks_before, "an exit hook outlived its records")


FOUR_CONSUMERS_DROPPED = """
def one_request(r):
    consumer = compat_consumers.BufferedConsumer(max_size=50, api_host=sys.argv[1])
    client = compat.Mixpanel("emulator-token", consumer=consumer)
    for n in range(10):
        client.track(f"user-{n}", "Dropped before exit", {"$insert_id": f"exit-{r}-{n}"})

for r in range(4):
    one_request(r)
gc.collect()
"""
"""Four per-request consumers dropped, holding 10 records each (``exit-R-N``)."""

EXIT_PROGRAM = (
    """
import gc, sys
from mixpanel_core import compat, compat_buffers, compat_consumers

"""
    + FOUR_CONSUMERS_DROPPED
    + """
print("pending", compat_buffers.orphan_thread.queue.qsize())
"""
)


def test_records_the_orphan_thread_has_not_sent_yet_are_sent_at_exit(
    mixpanel_emulator: Emulator,
) -> None:
    """Each request to the (slow) emulator takes 0.4 s: the process ends while the thread
    sends the first dropped consumer's records and the others still wait for it."""
    mixpanel_emulator.client.set_latency(0.4)
    finished = run_python(EXIT_PROGRAM, mixpanel_emulator.base_url)
    assert finished.returncode == 0, finished.stderr
    received = collections.Counter(mixpanel_emulator.client.insert_ids("track"))
    assert received == collections.Counter(f"exit-{r}-{n}" for r in range(4) for n in range(10))
    assert "not delivered" not in finished.stderr
    pending = int(finished.stdout.split()[-1])
    assert pending >= 1, "nothing was left for the exit: the test proved nothing"


_HELD: list[BufferedConsumer] = []
"""The consumer of the fork test, held here only: the child drops it by emptying this list (a
local of the test would stay alive in the child, whose stack is a copy of the parent's)."""


def _track(tag: str, count: int) -> None:
    client = compat.Mixpanel(TOKEN, consumer=_HELD[0])
    for n in range(count):
        client.track(f"{tag}-{n}", f"In the {tag}", {"$insert_id": f"{tag}-{n}"})


def _track_drop_and_watch(base_url: str, answer: Any) -> None:
    """In the child: track on the inherited consumer, drop it, and say what arrived while
    the child still runs (not at its exit)."""
    _track("child", 5)
    _HELD.clear()
    gc.collect()
    emulator = EmulatorClient(base_url)
    try:
        emulator.wait_for_records(5, "track", timeout=15)
        answer.put(sorted(emulator.insert_ids("track")))
    except EmulatorError as error:
        answer.put(str(error))
    finally:
        emulator.close()


def test_a_fork_child_delivers_what_its_dropped_consumer_held_and_not_its_parents(
    mixpanel_emulator: Emulator,
) -> None:
    _HELD.append(BufferedConsumer(max_size=50, api_host=mixpanel_emulator.base_url))
    try:
        _track("parent", 3)  # held by the parent at the fork: the child must not send them
        context = multiprocessing.get_context("fork")
        answer = context.Queue()
        child = context.Process(
            target=_track_drop_and_watch, args=(mixpanel_emulator.base_url, answer)
        )
        child.start()
        seen_by_child = answer.get(timeout=60)
        child.join(30)
        assert child.exitcode == 0
        assert seen_by_child == [f"child-{n}" for n in range(5)]
        _HELD[0].flush()
    finally:
        _HELD.clear()
    received = collections.Counter(mixpanel_emulator.client.insert_ids("track"))
    expected = [f"child-{n}" for n in range(5)] + [f"parent-{n}" for n in range(3)]
    assert received == collections.Counter(expected)  # each once


# A web server that builds a consumer per request and never flushes, during a Mixpanel
# outage, frees consumers faster than the orphan thread gets through them: what waits for it
# is bounded (MAX_ORPHANED_RECORDS), and what is dropped beyond is counted and logged.

BOUND = 20
HELD = EVENTS + 1  # what ``track_and_drop`` leaves in its consumer: the events, one profile
DROPPED = re.compile(r"(\d+) record\(s\) dropped, not sent")


def dropped_logged(records: list[logging.LogRecord]) -> int:
    """The records said dropped in the log, summed over its lines (each must be an ERROR)."""
    total = 0
    for record in records:
        found = DROPPED.search(record.getMessage())
        if found:
            assert record.levelno == logging.ERROR
            total += int(found.group(1))
    return total


def test_past_the_bound_freed_consumers_records_are_dropped_and_their_count_logged(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mixpanel stalled, the orphan thread sends nothing: the records freed consumers leave in
    memory never pass the bound; those dropped beyond it are logged at ERROR with their exact
    count and what to do; once Mixpanel answers, every record kept arrives, once."""
    monkeypatch.setattr(compat_buffers, "MAX_ORPHANED_RECORDS", BOUND)
    caplog.set_level(logging.ERROR, logger="mixpanel_core.compat_consumers")
    orphans = compat_buffers.orphan_thread
    wait_until(orphans.queue.empty, "earlier tests' freed consumers still wait")
    hooks_before = live_exit_hooks()
    requests: list[tuple[weakref.ref[Buffers], list[str]]] = []
    mixpanel_emulator.client.stall()
    try:
        for r in range(REQUESTS):
            ids: list[str] = []
            requests.append((track_and_drop(mixpanel_emulator.base_url, r, ids), ids))
            gc.collect()
            in_memory = sum(b.held() for ref, _ in requests if (b := ref()) is not None)
            assert in_memory <= BOUND, f"freed consumers keep {in_memory} records in memory"
        kept = [r for r, (ref, _) in enumerate(requests) if ref() is not None]
        assert 0 < len(kept) < REQUESTS, "nothing dropped, or nothing kept: this proves nothing"
        # The count the bound is checked against is the records really kept.
        assert orphans.waiting() == HELD * len(kept)
    finally:
        mixpanel_emulator.client.release()

    dropped = HELD * (REQUESTS - len(kept))
    wait_until(lambda: dropped_logged(caplog.records) >= dropped, "the drop was not logged")
    assert dropped_logged(caplog.records) == dropped
    (line, *_) = [r.getMessage() for r in caplog.records if DROPPED.search(r.getMessage())]
    assert "call flush()" in line
    assert "build the client once" in line
    expected = [i for r in kept for i in requests[r][1]]
    mixpanel_emulator.client.wait_for_records(len(expected), "track", timeout=30)
    wait_until(lambda: orphans.waiting() == 0, "the thread did not count its orphans done")
    wait_until(lambda: live_exit_hooks() <= hooks_before, "an exit hook outlived its records")
    received = collections.Counter(mixpanel_emulator.client.insert_ids("track"))
    assert received == collections.Counter(expected)  # the kept ones, each once; no other
    people = [r["$distinct_id"] for r in mixpanel_emulator.client.records("engage")]
    assert sorted(people) == sorted(f"user-{r}" for r in kept)


def test_a_freed_consumer_holding_more_than_the_bound_is_dropped_and_logged_by_the_idle_thread(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No orphan follows to wake the thread: it logs on its own, within seconds."""
    monkeypatch.setattr(compat_buffers, "MAX_ORPHANED_RECORDS", BOUND)
    caplog.set_level(logging.ERROR, logger="mixpanel_core.compat_consumers")
    consumer = BufferedConsumer(max_size=50, api_host=mixpanel_emulator.base_url)
    client = compat.Mixpanel(TOKEN, consumer=consumer)
    for n in range(BOUND + 1):
        client.track(f"user-{n}", "Viewed page")
    buffers = weakref.ref(consumer._held)
    del client, consumer
    gc.collect()
    assert buffers() is None, "the records of a consumer over the bound are still in memory"
    wait_until(lambda: dropped_logged(caplog.records) > 0, "the drop was not logged", timeout=5)
    assert dropped_logged(caplog.records) == BOUND + 1
    assert mixpanel_emulator.client.stats()["accepted"]["track"] == 0


EXIT_BOUND_PROGRAM = (
    """
import atexit, gc, logging, sys, time
from mixpanel_core import compat, compat_buffers, compat_consumers

logging.basicConfig(format="%(levelname)s %(message)s")
compat_buffers.MAX_ORPHANED_RECORDS = 20

def waiting_once_the_exit_hooks_ran():
    # Registered before any consumer is built, so it runs after their exit hooks.
    deadline = time.monotonic() + 10
    while compat_buffers.orphan_thread.waiting() and time.monotonic() < deadline:
        time.sleep(0.02)
    print("waiting", compat_buffers.orphan_thread.waiting())

atexit.register(waiting_once_the_exit_hooks_ran)

"""
    + FOUR_CONSUMERS_DROPPED
)


def test_at_exit_what_was_queued_is_sent_once_counted_done_and_the_drop_logged(
    mixpanel_emulator: Emulator,
) -> None:
    """A slow emulator (0.4 s a request) keeps the thread on the first consumer of four, each
    with 10 records, under a bound of 20: the second waits, the last two are dropped. The
    process then exits: the exit hook sends the second's, the thread counts it done by what
    was handed over (not what is left), and the drop is logged once."""
    mixpanel_emulator.client.set_latency(0.4)
    finished = run_python(EXIT_BOUND_PROGRAM, mixpanel_emulator.base_url)
    received = collections.Counter(mixpanel_emulator.client.insert_ids("track"))
    assert received == collections.Counter(f"exit-{r}-{n}" for r in range(2) for n in range(10))
    logged = [line for line in finished.stderr.splitlines() if DROPPED.search(line)]
    assert [line.split()[:2] for line in logged] == [["ERROR", "BufferedConsumer:"]], logged
    assert [int(n) for n in DROPPED.findall(finished.stderr)] == [20], finished.stderr
    assert "not delivered" not in finished.stderr
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["waiting", "0"], finished.stderr
