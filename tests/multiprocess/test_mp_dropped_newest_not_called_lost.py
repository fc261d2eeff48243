"""Frames a producer drops under ``when_full = "drop_newest"`` (reported DROPPED in the
producer) leave the count of what was queued for the sender: otherwise the owner, at close,
takes them for records written and never read, and calls them lost (``unaccounted``, and an
ERROR that producers were killed while writing) when each already has its report."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mp_workers import SYNCHRONOUS_DIRECT, config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

SENT = 1_000
PAD = "x" * 3_000
"""3 MB in all: more than the pipe and one read of the sender's intake (256 KiB) hold."""


def test_frames_dropped_for_the_newest_are_not_counted_lost(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(
        emulator.base_url,
        SYNCHRONOUS_DIRECT,
        when_full="drop_newest",
        batch_size=1,
        max_queue_messages=2,
    )
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    client.pipeline.build_all()
    emulator.client.stall()  # the sender waits on its first request; the pipe fills
    try:
        for n in range(SENT):
            client.track("u", "Maybe dropped", {"n": n, "pad": PAD})
    finally:
        emulator.client.release()
    with caplog.at_level(logging.ERROR):
        assert client.close(timeout=60) == []

    supervisor = transport.supervisor
    assert counter.by_status["dropped"] > 0, counter.by_status
    assert sum(counter.by_status.values()) == SENT, counter.by_status
    assert supervisor.failure is None
    assert supervisor.unaccounted == 0
    assert supervisor.unsettled() == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [m for m in errors if "never reached" in m], errors
