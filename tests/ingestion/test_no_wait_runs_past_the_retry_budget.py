"""A wait before a retry is started only if the retry can still be made within the budget,
counted from the request's first attempt.

Counted from the latest attempt instead (a mutant of ``IngestionClient._attempt`` that
survived every test), the budget looked whole before every retry: the client kept waiting
and gave up only once a wait had ended past the budget. Nothing was lost, but a caller's
bound (a buffered sender's flush, the forwarder's round) was overrun by a wait that could
never lead to a retry.
"""

from __future__ import annotations

import time

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import HttpOptions, IngestionClient

from .conftest import event, settings_for

BUDGET = 1.2
"""Seconds: with waits of 0.2 to 0.4 s, several retries fit, then one no longer does."""
SLACK = 0.02
"""Seconds between the client's look at the clock and its call of the wait, at most."""


class TimedWait:
    """Sleeps as asked and notes, on the monotonic clock, when each wait was to end: the
    client's decision, which a sleep overrunning on a loaded machine does not blur."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.ends.append(time.monotonic() + seconds)
        time.sleep(seconds)


def test_every_wait_ends_within_the_budget_of_the_request(mixpanel_emulator: Emulator) -> None:
    """Every request answered 503: the client retries while a retry fits in the budget, and
    gives up without starting the wait that would end past it."""
    mixpanel_emulator.client.fail_fraction(1.0, [503])
    options = HttpOptions(backoff_base=0.4, backoff_cap=0.4, retry_budget=BUDGET)
    client = IngestionClient(settings_for(mixpanel_emulator), options)
    wait = TimedWait()

    began = time.monotonic()
    result = client.send_batch("track", [event()], wait=wait)

    (report,) = result.reports
    assert report.status is DeliveryStatus.FAILED
    assert (report.reason or "").startswith("gave up after")
    assert len(wait.ends) >= 2, "the budget holds several retries: they were made"
    # The first attempt starts after ``began``, so its budget ends later than this.
    late = [round(end - began, 3) for end in wait.ends if end - began > BUDGET + SLACK]
    assert not late, f"waits were to end {late}s after the call began, past the {BUDGET}s budget"
    assert report.attempts == len(wait.ends) + 1
