"""Audit of the multiprocessing_queue transport: forks, threads racing close, bounded flush.

Each test runs real processes against the emulator over sockets and counts by $insert_id.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import pytest
from mp_workers import config_for, observed_client
from pipe_probe import paused_sender, wait_until_the_pipe_is_full

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.errors import TransportError
from mixpanel_core.multiprocess import QueueChannel, worker_client

pytestmark = pytest.mark.integration

BIG_BATCH = 250
"""Events of one frame several times larger than the pipe (about 21 kB each)."""
PROPERTIES = {f"p{k}": "x" * 200 for k in range(100)}


def spawn(target: Any, *args: Any) -> Any:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


# -- a worker_client producer that forks -------------------------------------------------------


def send_fork_send(channel: QueueChannel, results: Any) -> None:
    """A spawned worker with a partial batch forks; the child sends and closes, then the
    parent sends more and closes."""
    client = worker_client(channel)
    for i in range(5):
        client.track("parent", "Before fork", {"i": i})
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(5):
                client.track("child", "In child", {"i": i})
            client.close(timeout=10)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    for i in range(5):
        client.track("parent", "After fork", {"i": i})
    client.close(timeout=10)
    results.put("done")


def test_a_worker_client_that_forks_delivers_each_message_once(
    emulator: EmulatorProcess,
) -> None:
    # A long linger: the batch taken before the fork is still in the producer at the fork.
    client, counter = observed_client(config_for(emulator.base_url, linger=60.0))
    transport: Any = client.pipeline.transport("default")
    results: Any = multiprocessing.get_context("spawn").Queue()
    worker = spawn(send_fork_send, transport.channel, results)
    assert results.get(timeout=60) == "done"
    worker.join(30)
    client.close(timeout=30)

    ids = emulator.client.insert_ids("track")
    # Before the fix the child re-sent the 5 events its parent had batched before the fork.
    assert len(set(ids)) == 15
    assert len(ids) == 15, "an event was delivered twice"
    assert counter.by_status == {"accepted": 15}


# -- a thread writing a frame while another closes --------------------------------------------


def close_while_a_thread_writes(channel: QueueChannel, go: Any, closing: Any, results: Any) -> None:
    """One thread writes a frame larger than the pipe; the main thread closes meanwhile and
    tells whether that thread's write had finished when close() returned."""
    client = worker_client(channel)
    written = threading.Event()

    def write() -> None:
        for i in range(BIG_BATCH):
            client.track("writer", "Big", {"i": i, **PROPERTIES})
        written.set()

    thread = threading.Thread(target=write)
    thread.start()
    go.wait(60)
    closing.set()
    client.close(timeout=60)
    results.put(written.is_set())
    thread.join(60)


def test_a_worker_close_waits_for_the_frame_another_thread_is_writing(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, batch_size=BIG_BATCH, linger=60.0, block_timeout=60.0)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    sender = paused_sender(transport)
    context: Any = multiprocessing.get_context("spawn")
    go, closing, results = context.Event(), context.Event(), context.Queue()
    worker = spawn(close_while_a_thread_writes, transport.channel, go, closing, results)
    try:
        wait_until_the_pipe_is_full(transport.channel, worker)
        go.set()
        assert closing.wait(30)
    finally:
        os.kill(sender, signal.SIGCONT)
    written_before_close_returned = results.get(timeout=90)
    # The owner closes as soon as its worker has: the worker's frames must all be ahead of
    # the stop request by then. Before the fix the stop request cut the frame still being
    # written, and its events were never delivered.
    client.close(timeout=60)
    worker.join(30)

    assert written_before_close_returned, (
        "the worker's close() returned before its frame was written"
    )
    ids = emulator.client.insert_ids("track")
    assert len(set(ids)) == BIG_BATCH
    assert len(ids) == BIG_BATCH
    assert counter.by_status == {"accepted": BIG_BATCH}


# -- flush(timeout) bounded while the queue is full ---------------------------------------------


def write_a_big_frame(channel: QueueChannel, done: Any) -> None:
    client = worker_client(channel)
    for i in range(BIG_BATCH):
        client.track("writer", "Big", {"i": i, **PROPERTIES})
    client.close(timeout=60)
    done.set()


def flush_one(channel: QueueChannel, results: Any) -> None:
    """A worker whose flush(timeout=1) meets a full pipe: (seconds it took, returned)."""
    client = worker_client(channel)
    client.track("flusher", "One")
    started = time.monotonic()
    left = client.flush(timeout=1.0)
    results.put((time.monotonic() - started, len(left)))
    client.close(timeout=10)


def test_flush_honours_its_timeout_when_the_queue_is_full(emulator: EmulatorProcess) -> None:
    config = config_for(emulator.base_url, batch_size=BIG_BATCH, linger=60.0, block_timeout=15.0)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    sender = paused_sender(transport)
    context: Any = multiprocessing.get_context("spawn")
    done, results = context.Event(), context.Queue()
    writer = spawn(write_a_big_frame, transport.channel, done)
    try:
        wait_until_the_pipe_is_full(transport.channel, writer)
        flusher = spawn(flush_one, transport.channel, results)
        worker_took, worker_left = results.get(timeout=60)
        client.track("owner", "One")
        started = time.monotonic()
        # Before the fix the owner's flush waited block_timeout (15 s) for room for its
        # batch, and a worker's flush ignored its timeout altogether.
        with pytest.raises(TransportError, match="flush"):
            client.flush(timeout=1.0)
        owner_took = time.monotonic() - started
        assert owner_took < 1.0 + 2.0, f"the owner's flush(timeout=1) took {owner_took:.1f}s"
        assert worker_took < 1.0 + 2.0, f"a worker's flush(timeout=1) took {worker_took:.1f}s"
    finally:
        os.kill(sender, signal.SIGCONT)
    assert done.wait(60)
    writer.join(30)
    flusher.join(30)
    client.close(timeout=30)

    assert worker_left == 1, "the worker's flush did not return the event it could not queue"
    # The owner's event is reported FAILED (its flush raised); the writer's arrive.
    assert counter.by_status == {"accepted": BIG_BATCH, "failed": 1}
    assert len(set(emulator.client.insert_ids("track"))) == BIG_BATCH


def track_then_hold_open(
    channel: QueueChannel, tracked: Any, stop_tracking: Any, may_close: Any, results: Any
) -> None:
    """A worker that tracks (one event every 5 ms, ``tracked`` counting them) until
    ``stop_tracking``, then stays open, without closing, until ``may_close``; it tells
    what stopped it and what its ``close`` returned."""
    client = worker_client(channel)
    stopped_by = "stop_tracking"
    while not stop_tracking.is_set():
        try:
            client.track(f"slow-{tracked.value}", "E", {"n": tracked.value})
        except TransportError as exc:
            stopped_by = f"{type(exc).__name__}: {exc}"
            break
        tracked.value += 1
        time.sleep(0.005)
    may_close.wait(60)
    left = client.close(10)
    results.put((stopped_by, len(left)))


def test_the_owner_keeps_time_for_the_sender_to_stop_when_a_worker_does_not_close(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker still tracking when the owner closes, and not closed before the owner's
    close returns: waiting for it used the owner's whole bound, so the sender had none to
    stop in and was terminated, losing what it held with only a count left. A share of the
    bound is kept for the sender's own stop, so everything the worker tracked arrives."""
    client, counter = observed_client(config_for(emulator.base_url, batch_size=10))
    transport: Any = client.pipeline.transport("default")
    context: Any = multiprocessing.get_context("spawn")
    tracked = context.Value("i", 0, lock=False)  # written by the worker only
    stop_tracking, may_close, results = context.Event(), context.Event(), context.Queue()
    worker = context.Process(
        target=track_then_hold_open,
        args=(transport.channel, tracked, stop_tracking, may_close, results),
    )
    worker.start()
    # The worker stops tracking 1 s into the owner's close(timeout=4), well before the
    # owner gives up waiting for it (3 s in), so all it tracked is queued before the stop.
    stopper = threading.Timer(1.0, stop_tracking.set)
    try:
        emulator.client.wait_for_records(20, "track", timeout=60)
        tracked_when_closing = tracked.value
        stopper.start()
        with caplog.at_level(logging.ERROR, logger="mixpanel_core"):
            left = client.close(timeout=4)
    finally:
        stopper.cancel()
        stop_tracking.set()
        may_close.set()
    stopped_by, worker_left = results.get(timeout=30)
    worker.join(30)

    assert "terminating it" not in caplog.text
    assert transport.supervisor.process.exitcode == 0, "the sender did not stop by itself"
    assert worker.exitcode == 0
    assert stopped_by == "stop_tracking"
    count = tracked.value
    assert count > tracked_when_closing, "the worker was not tracking while the owner closed"
    # Exactly what the worker tracked, each once; nothing left over or lost uncounted.
    ids = emulator.client.insert_ids("track")
    assert len(ids) == len(set(ids)) == count
    assert sorted(r["properties"]["n"] for r in emulator.client.records("track")) == list(
        range(count)
    )
    assert counter.by_status == {"accepted": count}
    assert transport.supervisor.unaccounted == 0
    assert (left, worker_left) == ([], 0)
