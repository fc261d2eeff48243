"""After a ``close()`` that gave up on a request still out, the transport holds nothing.

That close reported those records FAILED, dead-lettered and returned them, and the thread
will not report them again. ``flush()`` still counted them as held: it waited out its whole
timeout and returned them a second time (a caller resending what ``flush`` returns sent them
twice), and ``len()`` kept counting them until the stalled request ended.
"""

from __future__ import annotations

import time

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator

from .test_buffered_http import make_event, transport_for, wait_for_stalled_request

pytestmark = pytest.mark.integration


def test_flush_after_a_close_that_gave_up_on_a_request_returns_nothing_at_once(
    mixpanel_emulator: Emulator,
) -> None:
    reports: list[DeliveryReport] = []
    transport = transport_for(mixpanel_emulator, reports, exit_timeout=0.0, read_timeout=30.0)
    mixpanel_emulator.client.stall()
    try:
        for n in range(50):
            transport.send(make_event("after-close", n))
        wait_for_stalled_request(mixpanel_emulator)
        given_up = transport.close(0.5)
        assert len(given_up) == 50
        assert [r.status for r in reports] == [DeliveryStatus.FAILED] * 50

        started = time.monotonic()
        assert transport.flush(2.0) == []
        assert time.monotonic() - started < 1.0  # nothing to wait for
        assert len(transport.sender) == 0
    finally:
        mixpanel_emulator.client.release()
