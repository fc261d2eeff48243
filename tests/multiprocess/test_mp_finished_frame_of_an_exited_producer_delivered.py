"""A producer that wrote a frame whole and then exited (a recycled worker: gunicorn's
``max_requests``) has its frame delivered, even when the sender had not read all of it when
it found the producer gone (review C, H2). The sender took the frame for one cut short by a
kill, discarded it, and the owner logged its records as "lost with producers killed while
writing them": here 0 of 50 arrived, with no report.

Made deterministic: the sender is paused (SIGSTOP), the worker writes one frame larger than
the sender's read (256 KiB) but smaller than the pipe, closes and exits; the sender is then
resumed, and its first read finds the producer gone with its frame half read.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from typing import Any

import pytest
from mp_workers import config_for, observed_client, write_one_frame_and_exit
from pipe_probe import paused_sender, pipe_capacity, unread_bytes

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess.intake import READ_SIZE
from mixpanel_core.testing import wait_until_sender_took

pytestmark = pytest.mark.integration

EVENTS = 50
PAD = 12_000


def test_a_frame_written_whole_by_a_producer_that_exited_is_delivered(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(emulator.base_url, batch_size=EVENTS, check_interval=0.05)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    channel = transport.channel
    # The sender's reading thread runs (it took a frame) before the sender is paused: resumed,
    # it finds the worker gone at its first read, the frame half read.
    client.track("owner", "First")
    transport.flush(timeout=30)
    wait_until_sender_took(channel, 1)
    sender = paused_sender(transport)
    try:
        worker = multiprocessing.get_context("spawn").Process(
            target=write_one_frame_and_exit, args=(channel, EVENTS, PAD)
        )
        worker.start()
        worker.join(60)
        assert worker.exitcode == 0
        in_pipe = unread_bytes(channel.pipe.reader.fd)
        assert READ_SIZE < in_pipe < pipe_capacity(channel), "one frame, over one read"
    finally:
        os.kill(sender, signal.SIGCONT)
    with caplog.at_level(logging.WARNING):
        client.close(timeout=30)
    supervisor = transport.supervisor
    assert (supervisor.cut, supervisor.unaccounted) == (0, 0)
    assert counter.by_status["accepted"] == EVENTS + 1
    assert emulator.client.stats()["accepted"]["track"] == EVENTS + 1
    assert "stopped in the middle of writing a frame" not in caplog.text
