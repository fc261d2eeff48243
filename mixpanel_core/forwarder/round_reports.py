"""What the reports of a delivery round tell the forwarder: each record's requests over all its
rounds, whether Mixpanel asked to slow down (a 429, its ``Retry-After``), and the failure to log.

The retries inside a round are logged by the ingestion client itself (see
``ingestion.retries_logged``), as for every transport.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.pending import PendingRecord

RATE_LIMITED = 429


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
