"""Refused credentials are logged once, then once a minute with how many records came between.

What is queued is still sent (and dead-lettered when refused too), so during a refusal every
request said the same ERROR and WARNING pair again: some 1,600 lines a minute for the on-call.
The records are reported and dead-lettered one by one all the same.
"""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest

from mixpanel_core import Mixpanel, log_throttle, refusals_logged
from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

from .test_buffered_http import _FAST, make_event
from .test_buffered_http_dropped import wait_until

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
        a_minute_later = time.monotonic() + refusals_logged.REFUSALS_LOGGED_EVERY
        monkeypatch.setattr(log_throttle, "time", SimpleNamespace(monotonic=lambda: a_minute_later))
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


@pytest.mark.parametrize("ending", ["close", "dropped without close"])
def test_what_is_left_unsaid_is_said_at_the_end_so_the_lines_add_up(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture, ending: str
) -> None:
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    transport = BufferedHttpTransport(settings, BufferedHttpOptions(**_FAST))  # type: ignore[arg-type]
    mixpanel_emulator.client.fail_fraction(1.0, statuses=(401,), endpoints=["track"])
    with caplog.at_level(logging.WARNING, logger="mixpanel_core.buffering"):
        for n in range(3):
            transport.send(make_event("refused", n))
            assert transport.flush(30) == []
        if ending == "close":
            transport.close(30)
        else:
            del transport  # its thread ends once it finds its sender freed
            wait_until(lambda: len(_lines(caplog)) == 2, "the line of the refusals left unsaid")
    lines = [line for level, line in _lines(caplog) if level == logging.ERROR]
    assert len(lines) == 2, lines
    assert lines[0].startswith("buffered_http: 1 record(s) not delivered: ")
    assert lines[1] == (
        "buffered_http: 2 more record(s) of /track not delivered since the last line, refused "
        "as that line says"
    )


def test_a_refusal_counts_only_its_own_records_and_the_others_keep_their_line(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # One /import request of two credentials: the configured secret's records are judged (one
    # is too old: rejected), the wrong API secret's are refused. The line counted all six.
    config = config_from_mapping(
        {
            "mixpanel": {
                "token": "emulator-token",
                "api_host": mixpanel_emulator.base_url,
                "api_secret": "emulator-secret",
            },
            "transports": {"default": {"type": "buffered_http", **_FAST, "linger": 0.5}},
            "plugins": {"enabled": []},  # Mixpanel judges the old record
        }
    )
    client = Mixpanel("emulator-token", config=config)
    with caplog.at_level(logging.WARNING, logger="mixpanel_core.buffering"):
        for n in range(4):
            when = 1000 if n == 3 else 1_700_000_000 + n
            client.import_data(None, f"u{n}", "e", when, {"$insert_id": f"good-{n}"})
        for n in range(2):
            client.import_data(
                None,
                f"u{n}",
                "e",
                1_700_000_000 + n,
                {"$insert_id": f"bad-{n}"},
                api_secret="wrong-secret",
            )
        assert client.flush(30) == []
    assert sorted(mixpanel_emulator.client.insert_ids("import")) == ["good-0", "good-1", "good-2"]
    [(refused_level, refused), (other_level, other)] = _lines(caplog)
    assert refused_level == logging.ERROR
    assert refused.startswith("default: 2 record(s) not delivered: Mixpanel refused the api secret")
    assert other_level == logging.WARNING
    assert other.startswith("default: 1 record(s) not delivered; first: ")
    client.close(30)
