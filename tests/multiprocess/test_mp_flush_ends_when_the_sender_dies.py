"""The owner's ``flush()`` waiting for the sender's answer ends once the sender is found dead,
raising about what it held; it does not wait out its whole timeout for an answer that cannot
come.

The sender's inner transport (synchronous ``http``) waits on a stalled emulator, so the flush
request waits behind it; the sender is then killed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
from mp_workers import SYNCHRONOUS_DIRECT, config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

EVENTS = 10
FLUSH_TIMEOUT = 120.0
ENDED_WITHIN = 30.0
"""Far more than noticing the death takes (a few check intervals), far less than the timeout."""


def test_a_flush_waiting_on_a_sender_that_dies_raises_without_waiting_out_its_timeout(
    emulator: EmulatorProcess,
) -> None:
    client, counter = observed_client(config_for(emulator.base_url, SYNCHRONOUS_DIRECT))
    transport: Any = client.pipeline.transport("default")
    supervisor = transport.supervisor
    raised: list[BaseException] = []

    def flush() -> None:
        try:
            client.flush(timeout=FLUSH_TIMEOUT)
        except Exception as exc:
            raised.append(exc)

    emulator.client.stall()
    flusher = threading.Thread(target=flush, daemon=True)
    try:
        for i in range(EVENTS):
            client.track("u", "Held", {"i": i})
        transport._producer.flush()
        waited_until = time.monotonic() + 30
        while transport.channel.taken.value < EVENTS:
            assert time.monotonic() < waited_until, "the sender never took the records"
            time.sleep(0.01)
        flusher.start()
        while not supervisor._waiting:
            assert time.monotonic() < waited_until, "the flush never waited for an answer"
            time.sleep(0.01)
        os.kill(supervisor.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        flusher.join(FLUSH_TIMEOUT + 30)
        ended_after = time.monotonic() - killed_at
    finally:
        emulator.client.release()
    client.close(timeout=10)

    assert not flusher.is_alive()
    assert ended_after < ENDED_WITHIN, f"flush() waited {ended_after:.1f}s after the death"
    assert len(raised) == 1
    assert f"{EVENTS} records it took have no delivery report" in str(raised[0])
    assert counter.by_status == {}
    assert supervisor.unaccounted == EVENTS
