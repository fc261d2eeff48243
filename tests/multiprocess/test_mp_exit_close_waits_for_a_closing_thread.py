"""A worker's exit close waits for the close another of its threads has under way: the
producer's ledger slot is freed only once that close's last frame is in the pipe.

Had the exit hook's close returned at once (the producer already closing) and freed the slot,
the owner's ``close()`` would no longer wait for that worker: it would stop the sender while
the other thread was still writing, and the frame, written behind the stop request or after
the sender exited, would never be delivered (counted ``unaccounted`` by the owner, but lost).

The interleaving is forced: in the worker, a thread's ``close()`` is held inside the write of
its last frame, and the exit hook then closes the same producer. The owner's ``close()`` runs
while the write is held; the write goes on once the owner has looked at the open producers
twice (the worker counted open, as it should be) or its close has returned (the worker not
counted). Only how long the test waits for the exit hook to return (it must not, while the
write is held) is timed, and that only decides how a wrong product fails, never whether a
right one passes.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from typing import Any

import pytest
from mp_workers import TOKEN, config_for, observed_client
from owner_close import close_the_owner_letting_the_worker_go

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.messages import message_from_record
from mixpanel_core.multiprocess import QueueChannel, worker_client
from mixpanel_core.multiprocess.producer import FrameProducer

pytestmark = pytest.mark.integration

RECORDS = 5
"""Records the worker's batch holds (the long linger keeps them there) until it closes."""

EXIT_HOOK_GRACE = 2.0
"""How long the test lets the exit hook's close run before the owner closes: a close that
returns at once (and frees the slot) has by then; one that waits is still waiting."""


def close_in_a_thread_then_exit(
    channel: QueueChannel, writing: Any, exit_hook_started: Any, go_on: Any, results: Any
) -> None:
    """The worker: ``RECORDS`` in its batch; a thread's ``close()`` held in the write of that
    batch (until ``go_on``) while the exit hook closes the producer too. Puts what the
    thread's close handed back, and whether the exit hook returned before the write went on."""
    client = worker_client(channel)
    for i in range(RECORDS):
        client.track("w", "Tick", {"$insert_id": f"w-{i}"})
    transport: Any = client.pipeline.transport("default")
    writer = transport._producer._writer
    exit_hook = transport._registration.cancel_exit_close.__self__
    write_for_real = writer.write
    exit_hook_returned = threading.Event()
    returned_early: list[bool] = []

    def write_held(*args: Any) -> Any:
        writing.set()
        go_on.wait(60)
        returned_early.append(exit_hook_returned.is_set())  # before this frame is written
        return write_for_real(*args)

    writer.write = write_held
    handed_back: list[Any] = []
    closing = threading.Thread(target=lambda: handed_back.extend(transport.close(30)))
    closing.start()
    assert writing.wait(30), "the thread's close never wrote its last batch"

    def exit_() -> None:
        exit_hook.run()  # what the worker's exit runs
        exit_hook_returned.set()

    exiting = threading.Thread(target=exit_)
    exit_hook_started.set()
    exiting.start()
    closing.join(60)
    exiting.join(60)
    results.put(
        (sorted(message.insert_id for message in handed_back), returned_early, exiting.is_alive())
    )


def test_the_exit_close_waits_for_the_last_frame_another_thread_writes(
    emulator: EmulatorProcess,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = config_for(emulator.base_url, linger=30.0, block_timeout=30.0)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    channel = transport.channel
    context: Any = multiprocessing.get_context("fork")
    writing, exit_hook_started, go_on = (context.Event() for _ in range(3))
    results = context.Queue()
    worker = context.Process(
        target=close_in_a_thread_then_exit,
        args=(channel, writing, exit_hook_started, go_on, results),
    )
    try:
        worker.start()
        assert exit_hook_started.wait(30), "the worker never ran its exit hook"
        # A slot freed at once by the exit hook is free by now.
        until = time.monotonic() + EXIT_HOOK_GRACE
        while channel.producers_open() and time.monotonic() < until:
            time.sleep(0.01)
        with caplog.at_level(logging.WARNING):
            left = close_the_owner_letting_the_worker_go(client, channel, go_on, monkeypatch)
        handed_back, exit_hook_returned_early, exit_hook_stuck = results.get(timeout=60)
        worker.join(30)
    finally:
        go_on.set()
        if worker.is_alive():
            worker.kill()

    records = [f"w-{i}" for i in range(RECORDS)]
    assert worker.exitcode == 0
    assert handed_back == []
    assert sorted(emulator.insert_ids("track")) == records
    seen = sorted((r.message.insert_id, r.status.value) for r in counter.reports if r.message)
    assert seen == [(insert_id, "accepted") for insert_id in records]
    assert left == []
    assert transport.supervisor.counts == {"accepted": RECORDS}
    assert transport.supervisor.unaccounted == 0
    told = [r.getMessage() for r in caplog.records if r.name.startswith("mixpanel_core")]
    assert told == []
    # How: the exit hook's close waited for the thread's (its slot freed once the frame was
    # in the pipe), and returned once that close had.
    assert exit_hook_returned_early == [False]
    assert not exit_hook_stuck


def test_the_exit_close_waits_no_longer_than_its_timeout_and_leaves_the_release_to_the_first(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = observed_client(config_for(emulator.base_url, linger=30.0, block_timeout=30.0))
    transport: Any = client.pipeline.transport("default")
    done: list[str] = []
    producer = FrameProducer(
        transport.channel, transport._context, on_done=lambda: done.append("done")
    )
    properties = {"token": TOKEN, "distinct_id": "p", "$insert_id": "p", "time": int(time.time())}
    producer.send(message_from_record("track", {"event": "Tick", "properties": properties}))
    writing, go_on = threading.Event(), threading.Event()
    write_for_real = producer._writer.write

    def write_held(*args: Any) -> Any:
        writing.set()
        go_on.wait(60)
        return write_for_real(*args)

    monkeypatch.setattr(producer._writer, "write", write_held)
    first: list[Any] = []
    closing = threading.Thread(target=lambda: first.extend(producer.close(30)))
    try:
        closing.start()
        assert writing.wait(30), "the first close never wrote its last batch"
        # Any other close (a reporter's may be on a thread the first waits for) returns at
        # once, leaving the slot to the first.
        started = time.monotonic()
        assert producer.close(30) == []
        assert time.monotonic() - started < 10, "a second close not at exit waited"
        assert done == [], "the second close ran on_done while the first still wrote"
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            assert producer.close(0.3, at_exit=True) == []
        took = time.monotonic() - started
        assert 0.3 <= took < 10, "the exit close did not wait for its timeout, and only that"
        assert done == [], "the exit close ran on_done while the first still wrote"
        assert "still writing the last batch after 0.3s" in caplog.text
    finally:
        go_on.set()
        closing.join(60)
    assert first == []
    assert done == ["done"]
    assert client.close(timeout=60) == []
    assert emulator.insert_ids("track") == ["p"]
