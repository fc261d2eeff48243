"""A sender the owner's ``close(timeout)`` has to terminate (its inner transport waits on a
Mixpanel that does not answer) takes what it held with it: by the time ``close()`` returns,
the owner has counted those records ``unaccounted`` and said why at ERROR. Left to the report
listener, which notices the death only after its own polls, the count came after ``close()``
had returned, and nothing said the sender was terminated."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from mp_workers import TOKEN, observed_client

from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

EVENTS = 30


def test_records_a_terminated_sender_held_are_counted_when_close_returns(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": emulator.base_url},
            "transports": {
                "default": {"type": "multiprocessing_queue", "inner": "direct", "batch_size": 10},
                # The synchronous transport: the sender waits on the request itself, longer
                # (read_timeout 30 s) than the owner's close allows.
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
        with caplog.at_level(logging.ERROR):
            client.close(timeout=3.0)
        # Read at once: the report listener would account for them too, later.
        unaccounted = transport.supervisor.unaccounted
    finally:
        emulator.client.release()

    assert transport.supervisor.process.exitcode is not None
    assert counter.by_status == {}
    assert unaccounted == EVENTS
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("it was terminated" in m and f"{10} records it took" in m for m in errors), errors
