"""Refused credentials are logged once, then once a minute with how many records came between.

What is queued is still sent (and dead-lettered when refused too), so during a refusal every
request said the same ERROR and WARNING pair again: some 1,600 lines a minute for the on-call.
The records are reported and dead-lettered one by one all the same.
"""

from __future__ import annotations

import logging

import pytest

from mixpanel_core import sender_loop
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

from .test_buffered_http import _FAST, make_event

pytestmark = pytest.mark.integration


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "mixpanel_core.buffering" and r.levelno >= logging.WARNING
    ]


def test_refusals_of_many_requests_make_one_line_then_one_a_minute_with_the_count(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports: list[DeliveryReport] = []
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    options = BufferedHttpOptions(**_FAST)  # type: ignore[arg-type]
    transport = BufferedHttpTransport(settings, options, report=reports.append)
    mixpanel_emulator.client.fail_fraction(1.0, statuses=(401,), endpoints=["track"])
    with caplog.at_level(logging.WARNING, logger="mixpanel_core.buffering"):
        for n in range(5):  # five requests, each refused
            transport.send(make_event("refused", n))
            assert transport.flush(30) == []
        first = _lines(caplog)
        monkeypatch.setattr(sender_loop, "REFUSALS_LOGGED_EVERY", 0.0)
        transport.send(make_event("refused", 5))
        assert transport.flush(30) == []
    assert mixpanel_emulator.client.stats()["requests"]["track"] == {"401": 6}
    assert [r.status for r in reports] == [DeliveryStatus.FAILED] * 6
    [(level, line)] = first
    assert level == logging.ERROR
    assert line.startswith("buffered_http: 1 record(s) not delivered: Mixpanel refused the")
    [_, (level, line)] = _lines(caplog)
    assert level == logging.ERROR
    assert "1 record(s) not delivered (and 4 before them since the last line)" in line
    transport.close(30)
