"""One ``mixpanel_delivered`` implementation that raises is logged, and every other observer,
before it or after it, still gets the report: a failing metrics plugin must not cost a
dead-letter plugin its reports (nothing lost silently)."""

from __future__ import annotations

import logging

import pytest

from mixpanel_core import hookimpl
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.testing import ReportCollector, memory_client


class Failing:
    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        raise RuntimeError("metrics backend down")


def test_observers_after_a_failing_one_get_every_report(caplog: pytest.LogCaptureFixture) -> None:
    first, last = ReportCollector(), ReportCollector()
    client, _ = memory_client(plugins=[("first", first), ("failing", Failing()), ("last", last)])

    with caplog.at_level(logging.ERROR, logger="mixpanel_core.pipeline"):
        client.track("user-1", "One")
        client.track("user-1", "Two")

    for collector in (first, last):
        assert [r.status for r in collector.reports] == [DeliveryStatus.ACCEPTED] * 2
    failures = [r for r in caplog.records if "'failing' failed in mixpanel_delivered" in r.message]
    assert len(failures) == 2
