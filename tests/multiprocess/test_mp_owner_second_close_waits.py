"""The owner's exit close while a thread's ``close()`` is under way waits for it, within its
bound: it returned at once, before the sender had delivered or been stopped, and the process
ends when the exit close returns (a ``multiprocessing`` child runs it while its other threads
still run). Any other second close returns at once: it may be a reporter's, on a thread the
first close waits for (test_mp_reporter_closes)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from mp_workers import SYNCHRONOUS_DIRECT, config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

EVENTS = 10


def test_the_exit_close_of_the_owner_returns_once_a_close_under_way_is_over(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, direct=SYNCHRONOUS_DIRECT, linger=0.01)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    emulator.client.stall()  # the sender's request waits: the first close() cannot end yet
    for n in range(EVENTS):
        client.track("u", "Tick", {"n": n})
    first_left: list[Any] = []
    first = threading.Thread(target=lambda: first_left.extend(transport.close(30)))
    first.start()
    release = threading.Timer(1.5, emulator.client.release)
    try:
        deadline = time.monotonic() + 10
        while not transport._closed:  # the first close has begun
            assert time.monotonic() < deadline
            time.sleep(0.01)
        release.start()
        transport._close_at_exit()
        # Returned only once the first is over: the sender delivered everything and stopped.
        assert counter.by_status == {"accepted": EVENTS}
        assert transport.supervisor.counts == {"accepted": EVENTS}
        assert not transport.supervisor.process.is_alive()
        first.join(5)
        assert first_left == []
    finally:
        release.cancel()
        emulator.client.release()
        first.join(30)
    assert [r["properties"]["n"] for r in emulator.client.records("track")] == list(range(EVENTS))
