"""A sender killed (SIGKILL, the OOM killer) while it holds records: the owner counts every
record it took or that was queued for it ``unaccounted``, so the loss is in the numbers, not
only in a log line."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from mp_workers import TOKEN, observed_client

from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

EVENTS = 30


def test_records_a_killed_sender_held_are_counted_unaccounted(emulator: EmulatorProcess) -> None:
    config = config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": emulator.base_url},
            "transports": {
                "default": {"type": "multiprocessing_queue", "inner": "direct", "batch_size": 10},
                "direct": {"type": "http"},
            },
        }
    )
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    emulator.client.stall()
    try:
        for i in range(EVENTS):
            client.track("u", "Held", {"i": i})
        transport._producer.flush()  # queue the partial batch now
        # The sender holds the first batch in its stalled request; the rest waits behind it.
        waited_until = time.monotonic() + 20
        while transport.channel.taken.value < 10:
            assert time.monotonic() < waited_until, "the sender never took the first batch"
            time.sleep(0.01)
        os.kill(transport.supervisor.process.pid, signal.SIGKILL)
        client.close(timeout=10.0)
    finally:
        emulator.client.release()

    supervisor = transport.supervisor
    assert counter.by_status == {}
    assert "died (exit code -9)" in str(supervisor.failure)
    assert supervisor.unaccounted == EVENTS
