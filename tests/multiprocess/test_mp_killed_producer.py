"""A producer killed while writing a frame (SIGKILL, the OOM killer, a worker-timeout abort)
loses that frame only: the other producers and the sender carry on, and the loss is counted.

Made deterministic: the sender is paused (SIGSTOP), so nothing reads the pipe; the victim
writes one frame larger than the pipe, which therefore fills with part of that frame while
the rest is provably still to be written; then the victim is SIGKILLed and the sender resumed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from typing import Any

import pytest
from mp_workers import config_for, observed_client, track_and_tell, write_one_big_frame
from pipe_probe import pipe_capacity, wait_until_the_pipe_is_full

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

BATCH = 100
"""The victim's one frame: BATCH events of PAD bytes, several times the pipe's capacity."""
PAD = 30_000
OTHERS = 2
EVENTS = 1_000
"""Events of each other producer."""
CLOSE_BOUND = 30.0


def start(target: Any, *args: Any) -> Any:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


@pytest.mark.parametrize("others_start", ["before the kill", "after the kill"])
def test_a_producer_killed_mid_frame_loses_only_that_frame(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture, others_start: str
) -> None:
    config = config_for(emulator.base_url, batch_size=BATCH, linger=60.0, block_timeout=60.0)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    channel = transport.channel
    sender = transport.supervisor.process
    while channel.sender_pid.value == 0:
        time.sleep(0.01)
    results: Any = multiprocessing.get_context("spawn").Queue()
    others: list[Any] = []
    os.kill(sender.pid, signal.SIGSTOP)
    try:
        victim = start(write_one_big_frame, channel, BATCH, PAD)
        # Only the victim writes, so a full pipe holds part of its frame, the rest unwritten.
        assert 2 * pipe_capacity(channel) < BATCH * PAD, "the victim's frame must fit no pipe"
        wait_until_the_pipe_is_full(channel, victim)
        if others_start == "before the kill":
            # They queue behind the victim's half frame while the sender is paused (time to
            # start and meet the full pipe; nothing is asserted on it).
            others = [start(track_and_tell, channel, w, EVENTS, results) for w in range(OTHERS)]
            time.sleep(2.0)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
    finally:
        os.kill(sender.pid, signal.SIGCONT)
    if not others:
        others = [start(track_and_tell, channel, w, EVENTS, results) for w in range(OTHERS)]
    for other in others:
        other.join(60)
    stuck = [o.pid for o in others if o.is_alive()]
    for other in others:
        if other.is_alive():
            other.kill()
    outcomes = [results.get(timeout=5) for _ in range(OTHERS - len(stuck))]

    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        client.close(timeout=CLOSE_BOUND)
    took = time.monotonic() - started

    assert not stuck, f"producers {stuck} were stuck behind the killed one"
    assert outcomes == ["never failed"] * OTHERS
    # (i) every other producer's event arrived, once.
    records = emulator.client.records("track")
    ids = [r["properties"]["$insert_id"] for r in records]
    assert len(set(ids)) == len(ids) == OTHERS * EVENTS
    assert {r["properties"]["distinct_id"] for r in records} == {
        f"worker-{w}" for w in range(OTHERS)
    }
    assert counter.by_status == {"accepted": OTHERS * EVENTS}
    # (ii) the sender was not wedged: it drained, finished by itself and reported its totals;
    # the owner did not wait for the dead producer to close.
    assert took < CLOSE_BOUND / 2, f"close() took {took:.1f}s"
    assert sender.exitcode == 0
    assert transport.supervisor.counts == {"accepted": OTHERS * EVENTS}
    # (iii) the victim's frame is counted lost, and said so.
    assert transport.supervisor.unaccounted == BATCH
    lost = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(f"{BATCH} records written by producers never reached" in m for m in lost), lost
