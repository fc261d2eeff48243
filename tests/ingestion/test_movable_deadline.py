"""A deadline given as a function, over real sockets: brought forward while a request hangs, it
ends that request then, whatever its read timeout (the forwarder's SIGTERM does this)."""

from __future__ import annotations

import threading
import time

import attrs
import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient

from .conftest import FAST, event, settings_for

pytestmark = pytest.mark.integration

READ_TIMEOUT = 30.0
BROUGHT_FORWARD_AFTER = 0.5
LEFT_THEN = 0.5


def test_a_deadline_brought_forward_during_a_hanging_request_abandons_it(
    mixpanel_emulator: Emulator,
) -> None:
    options = attrs.evolve(FAST, read_timeout=READ_TIMEOUT)
    client = IngestionClient(settings_for(mixpanel_emulator), options)
    mixpanel_emulator.client.stall()
    deadline: list[float] = []

    def bring_forward() -> None:
        # As request_stop does, from another thread, while the request waits for its answer.
        deadline.append(time.monotonic() + LEFT_THEN)

    timer = threading.Timer(BROUGHT_FORWARD_AFTER, bring_forward)
    timer.start()
    started = time.monotonic()
    try:
        result = client.send_batch(
            "track", [event(), event()], deadline=lambda: deadline[0] if deadline else None
        )
        took = time.monotonic() - started
        assert mixpanel_emulator.client.faults()["stalled_requests"] == 1, "it really hung"
    finally:
        timer.cancel()
        mixpanel_emulator.client.release()
        client.close()

    assert took < READ_TIMEOUT / 3, f"took {took:.1f}s: the read timeout, not the deadline"
    assert took >= BROUGHT_FORWARD_AFTER + LEFT_THEN - 0.1
    assert [r.status for r in result.reports] == [DeliveryStatus.FAILED] * 2
    assert "abandoned" in (result.reports[0].reason or "")
    assert result.reports[0].attempts == 1
