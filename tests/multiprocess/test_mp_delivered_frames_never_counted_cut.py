"""A frame that crossed the pipe in several chunks and was delivered is not also counted cut.

The sender's ``FrameAssembler`` keeps a frame per producer until its last chunk. Kept past
it, the delivered frame was later taken for one its producer gave up on: discarded "again"
when that producer started its next frame, and at the sender's stop, so the owner's ``cut``
count and its warning ("stopped in the middle of writing a frame ... discarded") claimed
delivered records as lost.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from mp_workers import config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess.pipe import PAYLOAD

pytestmark = pytest.mark.integration

BATCH = 10
BATCHES = 3
PAD = PAYLOAD // 2
"""Each event is half a chunk: a batch's frame takes several chunks."""


def test_frames_of_several_chunks_are_delivered_and_none_counted_cut(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(emulator.base_url, batch_size=BATCH, linger=60.0)
    client, counter = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    with caplog.at_level(logging.WARNING):
        for i in range(BATCH * BATCHES):
            client.track(f"u-{i}", "Big", {"i": i, "pad": "x" * PAD})
        assert client.close(timeout=60) == []

    supervisor = transport.supervisor
    assert counter.by_status == {"accepted": BATCH * BATCHES}
    assert supervisor.failure is None
    assert supervisor.cut == 0
    assert supervisor.unaccounted == 0
    assert "middle of writing a frame" not in caplog.text
