"""Worker clients dropped without ``close()``: what they hold is delivered, then nothing stays.

A worker that builds a ``worker_client`` per request and never closes it must still deliver
every event it tracked (exactly once), and each dropped producer must then end its linger
thread, cancel its exit hook and tell the channel it closed, so that the worker's threads go
back to what they were and the owner's close does not wait for producers nobody will close.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time
import weakref
from typing import Any

import pytest
from mp_workers import config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess import QueueChannel, worker_client
from mixpanel_core.multiprocess.channel import process_running
from mixpanel_core.process_exit import _ExitHook

pytestmark = pytest.mark.integration

CLIENTS = 20
EVENTS = 7
"""Per client: one full batch (``BATCH``), written by ``track``, and two left to linger."""
BATCH = 5
LINGER = 0.5
"""Long enough that a client collected right after it is dropped still holds its batch."""
CLOSE_BOUND = 12.0
"""The owner's close: it would wait three quarters of it for producers still counted open."""
SETTLE = 10.0
"""How long the worker waits for its dropped producers' threads to end."""


def linger_threads() -> int:
    return sum(t.name.endswith("-linger") for t in threading.enumerate())


def live_exit_hooks() -> int:
    gc.collect()
    return sum(isinstance(o, _ExitHook) for o in gc.get_objects())


def open_here(channel: QueueChannel) -> int:
    """This process's producers the owner's close would wait for."""
    return channel.ledger.open_pids(process_running).count(os.getpid())


def drop_clients(channel: QueueChannel, results: Any, stop: Any) -> None:
    """A spawned worker: a client per request, never closed; then it reports what is left
    and stays alive (so the owner's close would wait for producers still counted open).

    The garbage collector is off: a dropped client must be freed by its reference count
    alone, as a busy worker's long-lived objects are collected only rarely."""
    threads, hooks = threading.active_count(), live_exit_hooks()
    gc.disable()
    try:
        for request in range(CLIENTS):
            client = worker_client(channel)
            for i in range(EVENTS):
                client.track(f"request-{request}", "Tick", {"i": i})
            del client  # freed while its last batch waits to linger: it must still be written
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline and (
            threading.active_count() > threads or open_here(channel)
        ):
            time.sleep(0.05)
        left = {
            "threads above baseline": threading.active_count() - threads,
            "linger threads": linger_threads(),
            "producers counted open": open_here(channel),
        }
    finally:
        gc.enable()
    results.put({**left, "exit hooks above baseline": live_exit_hooks() - hooks})
    stop.wait(120)


def test_worker_clients_dropped_without_close_deliver_everything_and_leave_nothing_behind(
    emulator: EmulatorProcess,
) -> None:
    client, counter = observed_client(
        config_for(emulator.base_url, batch_size=BATCH, linger=LINGER)
    )
    transport: Any = client.pipeline.transport("default")
    context: Any = multiprocessing.get_context("spawn")
    results, stop = context.Queue(), context.Event()
    worker = context.Process(target=drop_clients, args=(transport.channel, results, stop))
    worker.start()
    try:
        left = results.get(timeout=120)
        assert worker.is_alive()
        # The worker still runs: the owner would wait for any producer it still counts open.
        started = time.monotonic()
        client.close(timeout=CLOSE_BOUND)
        closing = time.monotonic() - started
    finally:
        stop.set()
        worker.join(60)
    assert worker.exitcode == 0

    assert left == {
        "threads above baseline": 0,
        "linger threads": 0,
        "exit hooks above baseline": 0,
        "producers counted open": 0,
    }
    assert closing < CLOSE_BOUND / 2, f"the owner's close took {closing:.1f}s"
    ids = emulator.client.insert_ids("track")
    assert len(ids) == CLIENTS * EVENTS
    assert len(set(ids)) == CLIENTS * EVENTS
    assert counter.by_status == {"accepted": CLIENTS * EVENTS}


def drop_one_and_exit(channel: QueueChannel, results: Any) -> None:
    """A spawned worker: a client dropped (and collected) while its batch lingers; then the
    process exits at once, long before the linger would have written the batch."""
    client = worker_client(channel)
    for i in range(EVENTS):
        client.track("leaving", "Tick", {"i": i})
    del client
    gc.collect()
    results.put("dropped")


def test_a_worker_exiting_right_after_dropping_a_client_still_delivers_its_batch(
    emulator: EmulatorProcess,
) -> None:
    # A guard of the exit close: a producer freed by the user but kept alive by its lines
    # (with its transport) must be closed at exit, or the lingering batch dies with the
    # daemon thread, unreported.
    client, counter = observed_client(config_for(emulator.base_url, batch_size=BATCH, linger=60.0))
    transport: Any = client.pipeline.transport("default")
    context: Any = multiprocessing.get_context("spawn")
    results = context.Queue()
    worker = context.Process(target=drop_one_and_exit, args=(transport.channel, results))
    worker.start()
    assert results.get(timeout=60) == "dropped"
    worker.join(60)
    assert worker.exitcode == 0
    client.close(timeout=CLOSE_BOUND)
    ids = emulator.client.insert_ids("track")
    assert sorted(ids) == sorted(set(ids))
    assert len(ids) == EVENTS
    assert counter.by_status == {"accepted": EVENTS}


def fork_with_a_batch_pending(channel: QueueChannel, results: Any) -> None:
    """A spawned worker whose client has a batch lingering when it forks a child; the child
    tracks with the inherited client, drops it, and reports whether it was freed."""
    client = worker_client(channel)
    client.track("worker", "Tick", {})  # lingers (linger 1 s) across the fork
    box = [client]
    del client
    child = multiprocessing.get_context("fork").Process(
        target=drop_the_inherited_client, args=(box, results)
    )
    child.start()
    box.pop().close(5)
    child.join(30)


def drop_the_inherited_client(box: list[Any], results: Any) -> None:
    client = box.pop()
    client.track("child", "Tick", {})
    pipeline = weakref.ref(client.pipeline)
    del client
    deadline = time.monotonic() + SETTLE
    while (pipeline() is not None or linger_threads()) and time.monotonic() < deadline:
        time.sleep(0.05)  # its linger thread notices within linger that it was freed
    results.put({"pipeline freed": pipeline() is None, "linger threads": linger_threads()})


def test_a_client_inherited_with_a_batch_pending_is_freed_in_the_fork_child(
    emulator: EmulatorProcess,
) -> None:
    # The parent's batch, and what kept its pipeline alive while it waited, came with the
    # fork: the child's client was never freed, and the owner's close waited for its slot.
    client, counter = observed_client(config_for(emulator.base_url, batch_size=BATCH, linger=1.0))
    transport: Any = client.pipeline.transport("default")
    context: Any = multiprocessing.get_context("spawn")
    results = context.Queue()
    worker = context.Process(target=fork_with_a_batch_pending, args=(transport.channel, results))
    worker.start()
    try:
        assert results.get(timeout=60) == {"pipeline freed": True, "linger threads": 0}
    finally:
        worker.join(60)
        client.close(timeout=CLOSE_BOUND)
    assert sorted(r["event"] for r in emulator.records("track")) == ["Tick", "Tick"]
    assert counter.by_status == {"accepted": 2}
