"""A retry is held to the call's fixed deadline as well as to its retry budget.

The first attempt's timeouts are clamped to the time left before the deadline; a retry's to
the lesser of that and what is left of its budget. Written from a mutation audit: clamping a
retry to its budget alone failed no test, and a retry under a 1.5 s deadline (60 s of budget
left) waited for an answer that came 5 s later.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from mixpanel_core.delivery import DeliveryStatus

from .conftest import RecordingWait, event
from .scripted import ScriptedServer
from .test_bounded_attempts import BUSY, after, client_for

pytestmark = pytest.mark.integration

SLOW_ANSWER = 5.0
DEADLINE = 1.5


def test_a_retry_is_abandoned_at_the_fixed_deadline_not_at_the_end_of_its_budget(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(BUSY, after(SLOW_ANSWER))
    client = client_for(server, read_timeout=30.0, retry_budget=60.0)
    started = time.monotonic()
    result = client.send_batch(
        "track", [event()], wait=RecordingWait(), deadline=started + DEADLINE
    )
    took = time.monotonic() - started
    client.close()
    assert len(server.requests) == 2, "the retry was sent"
    (report,) = result.reports
    assert (report.status, report.attempts) == (DeliveryStatus.FAILED, 2)
    assert took < SLOW_ANSWER - 1.0, f"took {took:.1f}s: the retry outlived the deadline"
