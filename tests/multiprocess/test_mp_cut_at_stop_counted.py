"""A frame still unfinished when the sender stops is discarded then, and counted ``cut``: each
such frame, when several producers left one.

The sender's reading thread looks for dead producers only every ``check_interval``; a producer
killed in the middle of a frame just before the owner's ``close()`` is found by nobody but the
sender's stop, which must discard what that producer left and say so (the owner's ``cut``
count and its warning), as it would have a moment later.

Made deterministic as in ``test_mp_killed_producer``: the sender is paused, so the victim's
frame, larger than the pipe, is provably half written when the victim is killed; and the
check interval is longer than the test, so only the stop can find the frame.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from typing import Any

import pytest
from mp_workers import config_for, observed_client, write_one_big_frame
from pipe_probe import pipe_capacity, unread_bytes, wait_until_the_pipe_is_full

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

BATCH = 100
PAD = 30_000
"""The victim's one frame: BATCH events of PAD bytes, several times the pipe's capacity."""
CHECK_INTERVAL = 600.0


def kill_one_mid_frame(channel: Any, sender: Any) -> None:
    """A victim killed half way through a frame larger than the pipe (the sender paused); then
    the sender has read the pipe empty (the next victim's start is not mistaken for full)."""
    os.kill(sender.pid, signal.SIGSTOP)
    try:
        spawn: Any = multiprocessing.get_context("spawn")
        victim = spawn.Process(target=write_one_big_frame, args=(channel, BATCH, PAD))
        victim.start()
        wait_until_the_pipe_is_full(channel, victim)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
    finally:
        os.kill(sender.pid, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while unread_bytes(channel.pipe.reader.fd):
        assert time.monotonic() < deadline, "the sender never read the pipe empty"
        time.sleep(0.02)


@pytest.mark.parametrize("victims", [1, 2])
def test_every_frame_left_unfinished_at_the_stop_is_counted_cut(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture, victims: int
) -> None:
    config = config_for(
        emulator.base_url,
        batch_size=BATCH,
        linger=60.0,
        block_timeout=60.0,
        check_interval=CHECK_INTERVAL,
    )
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    channel = transport.channel
    waited_until = time.monotonic() + 30
    while channel.sender_pid.value == 0:
        assert time.monotonic() < waited_until, "the sender never started"
        time.sleep(0.01)
    assert 2 * pipe_capacity(channel) < BATCH * PAD, "a victim's frame must fit no pipe"

    for _ in range(victims):
        kill_one_mid_frame(channel, transport.supervisor.process)
    with caplog.at_level(logging.WARNING):
        assert client.close(timeout=60) == []

    supervisor = transport.supervisor
    assert supervisor.failure is None
    assert supervisor.cut == victims * BATCH
    assert supervisor.unaccounted == victims * BATCH
    assert counter.by_status == {}
    assert caplog.text.count(f"the {BATCH} records of that frame were discarded") == victims
