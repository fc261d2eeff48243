"""Outcomes and reports: runs of records that share a fate, expanded into one report each."""

from __future__ import annotations

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, reports_for
from mixpanel_core.ingestion import BatchResult, Outcome

from .conftest import event


def test_reports_for_equals_building_each_report_with_the_class() -> None:
    """Every field, none left unset: a field added to DeliveryReport and forgotten by
    reports_for fails here (an unset slot cannot be read)."""
    messages = [event(), None, event()]
    built = reports_for(
        messages, DeliveryStatus.REJECTED, "direct", "bad time", 400, 3, "properties.time", 7.5
    )
    expected = [
        DeliveryReport(
            m, DeliveryStatus.REJECTED, "direct", "bad time", 400, 3, "properties.time", 7.5
        )
        for m in messages
    ]
    assert built == expected
    for report, wanted in zip(built, expected, strict=True):
        for field in attrs.fields(DeliveryReport):
            assert getattr(report, field.name) == getattr(wanted, field.name), field.name


def test_reports_for_fills_the_defaults_as_the_class_does() -> None:
    message = event()
    assert reports_for([message], DeliveryStatus.ACCEPTED, "t") == [
        DeliveryReport(message, DeliveryStatus.ACCEPTED, "t")
    ]


def test_batch_result_expands_its_outcomes_into_reports_in_order() -> None:
    messages = [event() for _ in range(5)]
    pairs = [(m, m.json()) for m in messages]
    result = BatchResult(
        (
            Outcome("track", pairs[:2], DeliveryStatus.ACCEPTED, "t", None, 200, 1),
            Outcome(
                "track", pairs[2:3], DeliveryStatus.REJECTED, "t", "bad", 400, 1, "properties.x"
            ),
            Outcome("track", pairs[3:], DeliveryStatus.FAILED, "t", "gave up", 503, 4, None, 2.0),
        )
    )
    assert [r.message for r in result.reports] == messages
    assert [r.status for r in result.reports] == [
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.REJECTED,
        DeliveryStatus.FAILED,
        DeliveryStatus.FAILED,
    ]
    assert result.reports[2].field == "properties.x"
    assert [r.attempts for r in result.failed] == [4, 4]
    assert [r.retry_after for r in result.reports] == [None, None, None, 2.0, 2.0]
    assert result.undelivered == messages[3:]
    assert [r.message for r in result.accepted] == messages[:2]
    assert not result.ok
    assert result.reports is result.reports  # built once


def test_a_result_of_accepted_outcomes_is_ok() -> None:
    message = event()
    result = BatchResult(
        (Outcome("track", [(message, message.json())], DeliveryStatus.ACCEPTED, "t"),)
    )
    assert result.ok
    assert BatchResult(()).ok


def test_an_outcome_rebuilds_the_messages_its_sender_did_not_keep() -> None:
    """A sender may keep only the JSON (``None`` for the message): the report still carries
    the message, rebuilt from that JSON, equal to the one sent; JSON that is no record of the
    endpoint gets a report without a message rather than none."""
    messages = [event() for _ in range(3)]
    items = [(None, m.json()) for m in messages] + [(None, b"[1, 2]")]
    reports = Outcome("track", items, DeliveryStatus.FAILED, "t", "gave up").reports()
    assert [r.message for r in reports] == [*messages, None]
    assert [r.message.json() for r in reports[:3] if r.message] == [m.json() for m in messages]
    assert {r.status for r in reports} == {DeliveryStatus.FAILED}
    assert {r.reason for r in reports} == {"gave up"}
