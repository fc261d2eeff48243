"""The owner's ``close(timeout)`` while another of its threads is blocked writing a frame (the
sender not reading: the pipe is full): the lines left in the batch cannot be queued in time,
and they are reported FAILED and returned, not dropped without a word.

The sender is paused (SIGSTOP) so that the pipe stays full; it is resumed at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any

import pytest
from mp_workers import config_for, observed_client
from pipe_probe import pipe_capacity, unread_bytes

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.errors import QueueFullError, TransportError

pytestmark = pytest.mark.integration

BATCH = 100
PAD = "x" * 30_000
"""One batch: 3 MB, several times what the pipe holds (as in test_mp_killed_producer)."""
NOT_QUEUED = "not queued: the sender did not read the queue before close() or flush() timed out"


def test_lines_close_cannot_queue_past_a_blocked_writer_are_failed_and_returned(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, batch_size=BATCH, linger=60.0, block_timeout=10.0)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    channel = transport.channel
    sender = transport.supervisor.process
    waited_until = time.monotonic() + 20
    while channel.sender_pid.value == 0:
        assert time.monotonic() < waited_until, "the sender never started"
        time.sleep(0.01)

    def fill_one_batch() -> None:
        try:
            for n in range(BATCH):
                client.track("u", "Big", {"n": n, "pad": PAD})
        except (QueueFullError, TransportError):
            # Its frame finds the sender stopped by close() (or waits out block_timeout):
            # reported FAILED, asserted below.
            pass

    writer = threading.Thread(target=fill_one_batch, daemon=True)
    os.kill(sender.pid, signal.SIGSTOP)
    try:
        writer.start()
        capacity = pipe_capacity(channel)
        while unread_bytes(channel.pipe.reader.fd) < capacity - 8192:
            assert writer.is_alive(), "the writer finished: the pipe never filled"
            assert time.monotonic() < waited_until + 20, "the pipe never filled"
            time.sleep(0.01)
        client.track("u", "Last", {"$insert_id": "last"})  # stays in the batch: not full
        started = time.monotonic()
        left = client.close(timeout=1.5)
        took = time.monotonic() - started
    finally:
        # Killed by close, if SIGTERM could not end it stopped: then nothing to resume.
        with contextlib.suppress(ProcessLookupError):
            os.kill(sender.pid, signal.SIGCONT)
        writer.join(30)

    # Within its bound (with room for a loaded machine): close() asked the sender to stop
    # only once the blocked writer gave up at its block_timeout (10.4 s).
    assert took < 5.0, took
    assert [message.insert_id for message in left] == ["last"]
    last = [r for r in counter.reports if r.message is not None and r.message.insert_id == "last"]
    assert [(r.status.value, r.reason) for r in last] == [("failed", NOT_QUEUED)]
    big = [r for r in counter.reports if r.message is not None and r.message.insert_id != "last"]
    assert len(big) == BATCH  # the blocked writer's records: each reported, once
    assert {r.status.value for r in big} == {"failed"}
