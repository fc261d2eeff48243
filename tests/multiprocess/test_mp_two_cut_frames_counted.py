"""Each frame the sender discards unfinished (its producer killed while writing it) adds its
records to the supervisor's ``cut`` count: two producers killed mid-frame, one after the other,
count both frames, as ``unaccounted`` does.

Made deterministic as in ``test_mp_killed_producer``: the sender is paused, so a victim's frame
larger than the pipe is provably half written when the victim is killed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

import pytest
from mp_workers import config_for, observed_client, write_one_big_frame
from pipe_probe import pipe_capacity, wait_until_the_pipe_is_full

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

BATCH = 100
PAD = 30_000
"""A victim's one frame: BATCH events of PAD bytes, several times the pipe's capacity."""


def kill_one_mid_frame(channel: Any, sender: Any) -> None:
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


def test_every_frame_cut_short_is_counted(emulator: EmulatorProcess) -> None:
    config = config_for(emulator.base_url, batch_size=BATCH, linger=60.0, block_timeout=60.0)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    channel = transport.channel
    supervisor = transport.supervisor
    waited_until = time.monotonic() + 20
    while channel.sender_pid.value == 0:
        assert time.monotonic() < waited_until, "the sender never started"
        time.sleep(0.01)
    assert 2 * pipe_capacity(channel) < BATCH * PAD, "a victim's frame must fit no pipe"

    kill_one_mid_frame(channel, supervisor.process)
    # The sender finds the first victim dead and discards its frame before the second starts.
    while supervisor.cut < BATCH:
        assert time.monotonic() < waited_until + 20, "the first cut frame was never reported"
        time.sleep(0.05)
    kill_one_mid_frame(channel, supervisor.process)
    client.close(timeout=30)

    assert supervisor.cut == 2 * BATCH
    assert supervisor.unaccounted == 2 * BATCH
    assert counter.by_status == {}
