"""A stop request that says workers are still open (their frames may follow it) ends the sender
once the queue has been quiet for ``DRAIN_QUIET_PERIOD``, delivering what came; it does not
hold on until half the owner's time is gone, which the owner's ``close()`` would wait out.

The sender is run by hand (``start_sender = false``); the items are written to the pipe as a
producer writes them: a frame, the stop request (one worker still open, a deadline a minute
away), and a frame behind it.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest
from mp_workers import TOKEN, config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.messages import Message
from mixpanel_core.multiprocess import run_sender
from mixpanel_core.multiprocess.channel import stop_request
from mixpanel_core.multiprocess.frames import encode_frame, encode_line
from mixpanel_core.multiprocess.pipe import ChunkWriter, Written
from mixpanel_core.testing import memory_client

pytestmark = pytest.mark.integration

OWNER_DEADLINE = 60.0
EXITS_WITHIN = 15.0
"""Far longer than a quiet period and a delivery, far shorter than half the owner's time."""


def frame_of(message: Message) -> bytes:
    return encode_frame([encode_line(message)])


def test_a_sender_told_workers_are_open_stops_on_a_quiet_queue(
    emulator: EmulatorProcess,
) -> None:
    client, counter = observed_client(config_for(emulator.base_url, start_sender=False))
    transport: Any = client.pipeline.transport("default")
    channel = transport.channel
    source, memory = memory_client(TOKEN)
    for name in ("Before", "After"):
        source.track("u", name)
    messages = memory.messages
    writer = ChunkWriter(channel.pipe, check_interval=0.2)
    deadline = time.monotonic() + 5
    stop = stop_request(still_open=1, deadline=time.monotonic() + OWNER_DEADLINE)
    assert writer.write(frame_of(messages[0]), 1, deadline, deadline, lambda: True) is Written.ALL
    assert writer.write_control(stop, deadline, lambda: True)
    assert writer.write(frame_of(messages[1]), 1, deadline, deadline, lambda: True) is Written.ALL

    sender: Any = multiprocessing.get_context("spawn").Process(target=run_sender, args=(channel,))
    sender.start()
    started = time.monotonic()
    sender.join(OWNER_DEADLINE + 30)
    took = time.monotonic() - started
    try:
        assert sender.exitcode == 0
        assert took < EXITS_WITHIN, f"the sender took {took:.1f}s to stop"
    finally:
        if sender.is_alive():
            sender.kill()
    client.close(timeout=30)

    assert sorted(emulator.insert_ids("track")) == sorted(str(m.insert_id) for m in messages)
    assert counter.by_status == {"accepted": 2}
