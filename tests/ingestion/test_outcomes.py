"""Reports built in bulk: one per record of a request, all sharing its outcome."""

from __future__ import annotations

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, reports_for

from .conftest import event


def test_reports_for_equals_building_each_report_with_the_class() -> None:
    """Every field, none left unset: a field added to DeliveryReport and forgotten by
    reports_for fails here (an unset slot cannot be read)."""
    messages = [event(), None, event()]
    built = reports_for(
        messages, DeliveryStatus.REJECTED, "direct", "bad time", 400, 3, "properties.time"
    )
    expected = [
        DeliveryReport(m, DeliveryStatus.REJECTED, "direct", "bad time", 400, 3, "properties.time")
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
