"""What the reports of a delivery round tell the forwarder: each record's requests over all its
rounds, whether Mixpanel asked to slow down (a 429, its ``Retry-After``), and the failure to log;
and ``RetryLog``, the line that says a round needed retries inside the ingestion client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.pending import PendingRecord
from mixpanel_core.ingestion.http import Response

logger = logging.getLogger("mixpanel_core.forwarder")

RATE_LIMITED = 429
RETRY_LOG_INTERVAL = 5.0
"""Least seconds between two ``RetryLog`` lines: a Mixpanel failing for long must not flood
the log with one line per round."""


def with_earlier_attempts(report: DeliveryReport, item: PendingRecord) -> DeliveryReport:
    """``report`` counting the requests of the record's earlier rounds too."""
    if not item.attempts:
        return report
    return attrs.evolve(report, attempts=item.attempts + report.attempts)


def rate_limited(reports: Sequence[DeliveryReport]) -> bool:
    """Whether a FAILED report's last answer was a 429 (then the whole round backs off so)."""
    return any(r.http_status == RATE_LIMITED for r in reports if r.status is DeliveryStatus.FAILED)


def longest_retry_after(reports: Sequence[DeliveryReport]) -> float | None:
    """The longest ``Retry-After`` the FAILED reports' last answers asked for, if any."""
    asked = [
        r.retry_after
        for r in reports
        if r.status is DeliveryStatus.FAILED and r.retry_after is not None
    ]
    return max(asked, default=None)


def first_failure(reports: Sequence[DeliveryReport]) -> str | None:
    """The reason of the first FAILED report, for a log line."""
    return next((r.reason for r in reports if r.status is DeliveryStatus.FAILED), None)


class RetryLog:
    """Counts the requests the ingestion client retried (after a 429, a 5xx, a network error)
    and logs, at the end of a round that needed some, a WARNING saying how many and why (the
    first reason), at most every ``RETRY_LOG_INTERVAL`` seconds: the rounds in between are
    counted into the next line, logged at the end of the first round (retried or not) once
    the interval has passed, or when the forwarder stops. Without it a delivery that
    succeeded after retries, however many, left no trace in the log; one that failed in the
    end still gets its own line too.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._logged_at: float | None = None
        self._retried = 0
        self._rounds = 0
        self._in_round = False
        self._reason: str | None = None
        self._last_answer: str | None = None

    def answered(self, answer: Response | BaseException) -> None:
        """A request was answered (or ended by ``answer``, an exception)."""
        if isinstance(answer, BaseException):
            self._last_answer = f"{type(answer).__name__}: {answer}"
        else:
            self._last_answer = f"HTTP {answer.status_code}"

    def retrying(self) -> None:
        """The client waits before sending the request last answered again."""
        self._retried += 1
        self._in_round = True
        if self._reason is None:
            self._reason = self._last_answer or "no answer"

    def round_ended(self) -> None:
        """A delivery round returned: log when rounds needed retries (this one or those counted
        since the last line) and a line is due."""
        self._last_answer = None
        if self._in_round:
            self._in_round = False
            self._rounds += 1
        if not self._rounds:
            return
        now = self._clock()
        if self._logged_at is not None and now - self._logged_at < RETRY_LOG_INTERVAL:
            return
        self._log(now)

    def finish(self) -> None:
        """The forwarder stops: log the rounds counted since the last line, if any (review
        F1: a round that retried within 5 s of a line, followed by none that did, was never
        told)."""
        if self._rounds:
            self._log(self._clock())

    def _log(self, now: float) -> None:
        self._logged_at = now
        logger.warning(
            "%d request(s) to Mixpanel retried in %d delivery round(s) (first: %s)",
            self._retried,
            self._rounds,
            self._reason,
        )
        self._retried = self._rounds = 0
        self._reason = None
