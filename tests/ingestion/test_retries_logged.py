"""Retries are logged: one WARNING at the first, then one a minute per endpoint with a count,
and the count left unsaid when the client is closed.

During an outage shorter than the retry budget nothing was said until records were given up
on, a budget later: queues filled (and ``when_full`` dropped) with no line naming the cause.
"""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest

from mixpanel_core import log_throttle
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.ingestion.retries_logged import RETRIES_LOGGED_EVERY

from .conftest import FAST, RecordingWait, event, profile, settings_for

pytestmark = pytest.mark.integration


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "mixpanel_core.ingestion" and r.levelno == logging.WARNING
    ]


def test_retries_make_one_line_then_one_a_minute_per_endpoint_with_the_count(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = IngestionClient(settings_for(mixpanel_emulator), FAST, name="app")
    controls = mixpanel_emulator.client
    controls.fail_next(4, 503, endpoints=["track"])
    wait = RecordingWait()
    with caplog.at_level(logging.WARNING, logger="mixpanel_core.ingestion"):
        assert client.send_batch("track", [event(), event()], wait=wait).ok
        first = _lines(caplog)
        controls.fail_next(1, 503, endpoints=["engage"])
        assert client.send_batch("engage", [profile()], wait=wait).ok
        by_engage = _lines(caplog)[len(first) :]
        a_minute_later = time.monotonic() + RETRIES_LOGGED_EVERY
        monkeypatch.setattr(log_throttle, "time", SimpleNamespace(monotonic=lambda: a_minute_later))
        controls.fail_next(1, 429, endpoints=["track"])
        assert client.send_batch("track", [event()], wait=wait).ok
        later = _lines(caplog)[len(first) + len(by_engage) :]
        controls.fail_next(2, 500, endpoints=["track"])
        assert client.send_batch("track", [event()], wait=wait).ok
        assert len(_lines(caplog)) == len(first) + len(by_engage) + len(later)  # counted
        client.close()
        at_close = _lines(caplog)[len(first) + len(by_engage) + len(later) :]
    assert len(wait.delays) == 8  # every failure was retried, and every one was logged or counted
    [line] = first
    assert line.startswith("app: retrying 2 record(s) to /track in 0.0s (retry 1, 0.0s of its ")
    assert "one line a minute while retries go on): HTTP 503: " in line
    [line] = by_engage  # another endpoint has lines of its own
    assert line.startswith("app: retrying 1 record(s) to /engage in ")
    [line] = later
    assert "(retry 1, " in line
    assert "; and 3 other retries to /track since the last line;" in line
    assert "HTTP 429" in line
    # What was counted since is said when the client is closed: the lines add up to 8.
    assert at_close == ["app: 2 more retries to /track since the last line"]
