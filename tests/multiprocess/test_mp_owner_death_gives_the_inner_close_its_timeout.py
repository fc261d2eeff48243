"""When the owning process dies, the sender still closes its inner transport with
``shutdown_timeout``: what that transport holds is delivered, not dropped at a zero timeout.

A dead owner sends no stop request, so there is no owner's deadline; the sender drains the
queue and then gives its inner transport ``shutdown_timeout`` to close. Here the inner
``buffered_http`` holds every record (its linger is long) when the owner is SIGKILLed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

import pytest
from mp_workers import TOKEN, config_for

from mixpanel_core.client import Mixpanel
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess.channel import process_running

pytestmark = pytest.mark.integration

EVENTS = 20
BOUND = 60.0
HOLDING_INNER = {"type": "buffered_http", "linger": 600.0}
"""The sender's inner transport keeps what it takes until it is closed."""


def own_track_and_wait(base_url: str, taken: Any, sender: Any) -> None:
    """The owner: track, wait until the sender took everything, say so, and hang (killed)."""
    config = config_for(base_url, HOLDING_INNER, shutdown_timeout=BOUND)
    client = Mixpanel(TOKEN, config=config)
    for i in range(EVENTS):
        client.track(f"u-{i}", "Tick", {"$insert_id": f"tick-{i}"})
    transport: Any = client.pipeline.transport("default")
    channel = transport.channel
    deadline = time.monotonic() + BOUND
    while channel.taken.value < EVENTS and time.monotonic() < deadline:
        time.sleep(0.02)
    sender.put(channel.sender_pid.value)
    taken.put(channel.taken.value)
    time.sleep(600)


def test_the_sender_of_a_dead_owner_delivers_what_its_inner_transport_holds(
    emulator: EmulatorProcess,
) -> None:
    context: Any = multiprocessing.get_context("fork")
    taken, sender = context.Queue(), context.Queue()
    owner = context.Process(target=own_track_and_wait, args=(emulator.base_url, taken, sender))
    owner.start()
    sender_pid = 0
    try:
        sender_pid = sender.get(timeout=BOUND)
        assert taken.get(timeout=BOUND) == EVENTS, "the sender never took every record"
        assert emulator.insert_ids("track") == [], "the inner transport did not hold them"
        os.kill(owner.pid, signal.SIGKILL)
        owner.join(BOUND)
        deadline = time.monotonic() + BOUND
        while process_running(sender_pid):
            assert time.monotonic() < deadline, "the orphaned sender never exited"
            time.sleep(0.05)
    finally:
        if owner.is_alive():
            owner.kill()
            owner.join(10)
        if sender_pid and process_running(sender_pid):
            os.kill(sender_pid, signal.SIGKILL)

    assert sorted(emulator.insert_ids("track")) == sorted(f"tick-{i}" for i in range(EVENTS))
