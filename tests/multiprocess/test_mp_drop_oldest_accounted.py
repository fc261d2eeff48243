"""Frames the sender drops under ``when_full = "drop_oldest"`` count as taken: every record sent
is accepted or reported DROPPED, the sender's totals add up to what was sent, and none is called
lost. The sender delivers to the emulator through the synchronous ``http`` transport; the
emulator holds its requests, so the sender's backlog overflows while it waits."""

from __future__ import annotations

import time

import pytest
from mp_workers import SYNCHRONOUS_DIRECT, config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

SENT = 40


def test_frames_dropped_for_the_oldest_are_counted_taken_not_lost(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(
        emulator.base_url,
        SYNCHRONOUS_DIRECT,
        start_method="fork",
        when_full="drop_oldest",
        batch_size=1,
        max_queue_messages=2,
    )
    client, counter = observed_client(config)
    transport = client.pipeline.transport("default")
    emulator.stall()
    try:
        for n in range(SENT):
            client.track(f"u-{n}", "Dropped or not", {"n": n})
        # The sender waits on its first request; its reading thread drops the oldest frames
        # of its backlog meanwhile (polled every 50 ms: two seconds are plenty).
        time.sleep(2)
    finally:
        emulator.release()
    assert client.close(timeout=60) == []
    supervisor = transport.supervisor
    assert supervisor.failure is None
    assert counter.by_status["dropped"] > 0, counter.by_status
    assert sum(counter.by_status.values()) == SENT, counter.by_status
    assert supervisor.counts == dict(counter.by_status)
    assert supervisor.unaccounted == 0
    assert supervisor.unsettled() == 0
