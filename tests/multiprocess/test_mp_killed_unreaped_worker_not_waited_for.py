"""A worker killed with its producer open, and not yet reaped by its parent (a zombie), counts
as gone: the owner's ``close()`` does not wait for it.

A forked worker is the owner's own child, and an owner that has not joined it yet (a pre-fork
server's master between two ``waitpid`` calls) still sees its pid: ``os.kill(pid, 0)``
succeeds on a zombie. Taken for a running producer, it held the owner's close for its whole
bound and made the sender wait for frames that can never come.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from mp_workers import config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess import QueueChannel, worker_client

pytestmark = pytest.mark.integration

BOUND = 30.0


def track_flush_and_hang(channel: QueueChannel, flushed: Any) -> None:
    """Track one event, flush it, then hang with the producer open until killed."""
    client = worker_client(channel)
    client.track("victim", "Tick", {"$insert_id": "victim-0"})
    client.flush(10)
    flushed.set()
    time.sleep(600)


def state(pid: int) -> bytes:
    return Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[0]


def test_a_killed_worker_not_yet_reaped_is_not_counted_open(emulator: EmulatorProcess) -> None:
    client, counter = observed_client(config_for(emulator.base_url, linger=0.02))
    transport: Any = client.pipeline.transport("default")
    channel = transport.channel
    context: Any = multiprocessing.get_context("fork")
    flushed = context.Event()
    worker = context.Process(target=track_flush_and_hang, args=(channel, flushed))
    worker.start()
    try:
        assert flushed.wait(BOUND), "the worker never flushed"
        assert channel.producers_open() == 1
        os.kill(worker.pid, signal.SIGKILL)
        # Not joined (nor is_alive(), which would reap it): it stays a zombie.
        deadline = time.monotonic() + BOUND
        while state(worker.pid) != b"Z":
            assert time.monotonic() < deadline, "the killed worker never became a zombie"
            time.sleep(0.02)
        while channel.producers_open() != 0:
            assert state(worker.pid) == b"Z"
            assert time.monotonic() < deadline, "a zombie worker is still counted open"
            time.sleep(0.02)
        started = time.monotonic()
        assert client.close(timeout=BOUND) == []
        assert time.monotonic() - started < BOUND / 2, "the owner's close waited for the zombie"
    finally:
        worker.kill()
        worker.join(10)

    assert counter.by_status == {"accepted": 1}
    assert emulator.insert_ids("track") == ["victim-0"]
    assert transport.supervisor.unaccounted == 0
