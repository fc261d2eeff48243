"""What a delivery round's reports tell the back-off before the next round: the longest
``Retry-After`` among its failed records (a round whose requests got different answers must
honour every one of them, so the longest), and a 429 only when a failed record's last answer was
one; accepted and rejected records say nothing about when to try again."""

from __future__ import annotations

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.round_reports import longest_retry_after, rate_limited

ACCEPTED, FAILED, REJECTED = DeliveryStatus.ACCEPTED, DeliveryStatus.FAILED, DeliveryStatus.REJECTED


def _report(
    status: DeliveryStatus, http_status: int | None = None, retry_after: float | None = None
) -> DeliveryReport:
    return DeliveryReport(
        None, status, "forwarder", http_status=http_status, retry_after=retry_after
    )


def test_the_longest_retry_after_of_the_failed_records_is_the_wait() -> None:
    reports = [
        _report(FAILED, 429, retry_after=2.0),
        _report(FAILED, 503, retry_after=30.0),
        _report(FAILED, 500),
        _report(ACCEPTED, 200, retry_after=600.0),  # not a failure: says nothing
        _report(REJECTED, 400, retry_after=900.0),
    ]
    assert longest_retry_after(reports) == 30.0
    assert longest_retry_after(list(reversed(reports))) == 30.0
    assert longest_retry_after([_report(FAILED, 500), _report(ACCEPTED, 200)]) is None


def test_a_round_is_rate_limited_only_by_a_failed_record_answered_429() -> None:
    assert rate_limited([_report(ACCEPTED, 200), _report(FAILED, 429)])
    assert not rate_limited([_report(FAILED, 503), _report(REJECTED, 429)])
