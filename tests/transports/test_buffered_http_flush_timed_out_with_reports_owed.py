"""A ``flush`` that runs out of time while the sender thread still owes the reports of records
Mixpanel answered says so.

Those records are not returned: they are no longer held, and the caller sending them again
would duplicate them. But with a ``mixpanel_delivered`` observer holding the sender thread up,
``flush`` returned ``[]`` at its deadline, which the docs read as "every message has its
outcome and its report made", and a process exiting then lost the reports without a line
(review U2).
"""

from __future__ import annotations

import logging
import threading

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import PeopleUpdate
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

from .test_buffered_http import make_event

pytestmark = pytest.mark.integration


class HeldObserver:
    """Holds the sender thread in its first report until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.reports: list[DeliveryReport] = []

    def __call__(self, report: DeliveryReport) -> None:
        self.reports.append(report)
        self.release.wait(30)


def test_a_flush_out_of_time_with_reports_owed_says_so(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    observer = HeldObserver()
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    options = BufferedHttpOptions(linger=0.01, exit_timeout=0.0)
    transport = BufferedHttpTransport(settings, options, name="audited", report=observer)
    try:
        for n in range(3):
            transport.send(make_event("audited", n))
        with caplog.at_level(logging.WARNING, logger="mixpanel_core.buffering"):
            assert transport.flush(0.5) == []  # delivered: nothing to send again
        assert len(mixpanel_emulator.client.insert_ids("track")) == 3
        assert len(observer.reports) == 1  # the other two reports are still owed
        [warning] = [r.getMessage() for r in caplog.records if "ran out of time" in r.getMessage()]
        assert warning.startswith(
            "audited: flush ran out of time while up to 3 records Mixpanel answered had "
            "their delivery reports (and dead letters) still to be made"
        ), warning
    finally:
        observer.release.set()
        transport.close(10)
    assert [r.status for r in observer.reports] == [DeliveryStatus.ACCEPTED] * 3

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mixpanel_core.buffering"):
        transport2 = BufferedHttpTransport(settings, options, name="quick", report=observer)
        transport2.send(make_event("quick", 0))
        assert transport2.flush(30) == []
        transport2.close(10)
    assert "ran out of time" not in caplog.text  # a flush that ends in time says nothing


def test_no_warning_for_a_take_whose_answered_requests_are_reported(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Review R12: with no observer at all, a flush out of time during the second request of a
    take (an event, then a profile update, against a slow Mixpanel) warned of reports owed for
    the first request's records, which were settled."""
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    options = BufferedHttpOptions(linger=0.2, exit_timeout=0.0)
    transport = BufferedHttpTransport(settings, options, name="unobserved")
    mixpanel_emulator.client.set_latency(0.6)
    try:
        transport.send(make_event("first", 0))
        transport.send(
            PeopleUpdate(
                freeze(
                    {"$token": "emulator-token", "$distinct_id": "u", "$set": {"n": 1}}, "people"
                )
            )
        )
        with caplog.at_level(logging.WARNING, logger="mixpanel_core.buffering"):
            held = transport.flush(1.0)  # the event's request answered; the update's out
        assert [m.endpoint for m in held] == ["engage"]
        assert "ran out of time" not in caplog.text
    finally:
        mixpanel_emulator.client.set_latency(0)
        transport.close(10)
