"""A sender killed in the middle of writing a report leaves half of it in the report queue; the
owner's report listener, reading it, blocks for good. The owner's ``close()`` must still
notice the death (the sender exited, its last report never came) and count what it held
``unaccounted``, with the failure said: the listener cannot.

The half-written report is made by hand: a length prefix promising more bytes than follow,
written to the report queue's pipe as the sender's ``put`` would, just before the sender is
killed. Its inner transport waits on a stalled emulator meanwhile, holding its first batch.
"""

from __future__ import annotations

import os
import signal
import struct
import time
from typing import Any

import pytest
from mp_workers import SYNCHRONOUS_DIRECT, config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

EVENTS = 30
PROMISED = 1000
"""The torn report's announced length; only ``SENT`` bytes of it follow."""
SENT = 10


def test_a_sender_killed_while_writing_a_report_is_accounted_for(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, SYNCHRONOUS_DIRECT, batch_size=10)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    supervisor = transport.supervisor
    reports = transport.channel.reports
    emulator.client.stall()
    try:
        for i in range(EVENTS):
            client.track("u", "Held", {"i": i})
        transport._producer.flush()
        waited_until = time.monotonic() + 30
        while transport.channel.taken.value < 10:
            assert time.monotonic() < waited_until, "the sender never took the first batch"
            time.sleep(0.01)
        os.write(reports._writer.fileno(), struct.pack("!i", PROMISED) + b"x" * SENT)
        os.kill(supervisor.process.pid, signal.SIGKILL)
        started = time.monotonic()
        client.close(timeout=30.0)
        took = time.monotonic() - started
    finally:
        emulator.client.release()
        # Let the listener finish its read (an unreadable item it logs), not hang on.
        os.write(reports._writer.fileno(), b"x" * (PROMISED - SENT))

    assert counter.by_status == {}
    assert "died (exit code -9)" in str(supervisor.failure)
    assert supervisor.unaccounted == EVENTS
    assert took < 20.0, "close() waited out its timeout for a sender already dead"
