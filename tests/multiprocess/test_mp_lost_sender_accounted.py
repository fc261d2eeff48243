"""A sender lost while it holds records takes them with it, and the owner counts every record it
took or that was queued for it ``unaccounted``: the loss is in the numbers, not only in a log
line.

- Killed (SIGKILL, the OOM killer).
- Terminated by the owner's ``close(timeout)`` (its inner transport waits on a Mixpanel that
  does not answer): counted by the time ``close()`` returns, and said at ERROR. Left to the
  report listener, which notices the death only after its own polls, the count came after
  ``close()`` had returned, and nothing said the sender was terminated.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import pytest
from mp_workers import SYNCHRONOUS_DIRECT, config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

EVENTS = 30


def _sender_holding_a_batch(emulator: EmulatorProcess) -> tuple[Any, Any, Any]:
    """A client whose sender holds its first batch of 10 in a request the (stalled) emulator
    does not answer, the other 20 queued behind it; ``(client, counter, transport)``."""
    config = config_for(emulator.base_url, SYNCHRONOUS_DIRECT, batch_size=10)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    for i in range(EVENTS):
        client.track("u", "Held", {"i": i})
    transport._producer.flush()  # queue the partial batch now
    waited_until = time.monotonic() + 20
    while transport.channel.taken.value < 10:
        assert time.monotonic() < waited_until, "the sender never took the first batch"
        time.sleep(0.01)
    return client, counter, transport


def test_records_a_killed_sender_held_are_counted_unaccounted(emulator: EmulatorProcess) -> None:
    emulator.client.stall()
    try:
        client, counter, transport = _sender_holding_a_batch(emulator)
        os.kill(transport.supervisor.process.pid, signal.SIGKILL)
        client.close(timeout=10.0)
    finally:
        emulator.client.release()

    supervisor = transport.supervisor
    assert counter.by_status == {}
    assert "died (exit code -9)" in str(supervisor.failure)
    assert supervisor.unaccounted == EVENTS


def test_records_a_terminated_sender_held_are_counted_when_close_returns(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.client.stall()
    try:
        client, counter, transport = _sender_holding_a_batch(emulator)
        with caplog.at_level(logging.ERROR):
            client.close(timeout=3.0)
            # Read at once: the report listener would account for them too, later.
            unaccounted = transport.supervisor.unaccounted
            # The listener then finds the sender dead: the same loss is not logged again.
            transport.supervisor._listener.join(10)
    finally:
        emulator.client.release()

    assert transport.supervisor.process.exitcode is not None
    assert counter.by_status == {}
    assert unaccounted == EVENTS
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("it was terminated" in m and f"{10} records it took" in m for m in errors), errors
    assert sum("records it took have no delivery report" in m for m in errors) == 1, errors
