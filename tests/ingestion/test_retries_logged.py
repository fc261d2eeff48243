"""Retries are logged: one WARNING at the first, then one a minute per endpoint with a count,
and the count left unsaid by the first call that ends a minute after the last line, or at exit.

During an outage shorter than the retry budget nothing was said until records were given up
on, a budget later: queues filled (and ``when_full`` dropped) with no line naming the cause.
The count is the process's, by transport name (review R30): a client built per web request
said its first retry each time, and took its count with it.
"""

from __future__ import annotations

import itertools
import logging
import textwrap
import time
from types import SimpleNamespace

import pytest

from mixpanel_core import log_throttle
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.ingestion.retries_logged import RETRIES_LOGGED_EVERY

from ..subprocesses import run_python
from .conftest import FAST, RecordingWait, event, profile, settings_for

pytestmark = pytest.mark.integration

_names = itertools.count()


def unique_name() -> str:
    """A transport name no other test counts retries under (the count is the process's)."""
    return f"retries-{next(_names)}"


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "mixpanel_core.ingestion" and r.levelno == logging.WARNING
    ]


def a_minute_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    later = time.monotonic() + RETRIES_LOGGED_EVERY
    monkeypatch.setattr(log_throttle, "time", SimpleNamespace(monotonic=lambda: later))


def test_retries_make_one_line_then_one_a_minute_per_endpoint_with_the_count(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name()
    client = IngestionClient(settings_for(mixpanel_emulator), FAST, name=name)
    controls = mixpanel_emulator.client
    controls.fail_next(4, 503, endpoints=["track"])
    wait = RecordingWait()
    caplog.set_level(logging.WARNING, logger="mixpanel_core.ingestion")
    assert client.send_batch("track", [event(), event()], wait=wait).ok
    first = _lines(caplog)
    controls.fail_next(1, 503, endpoints=["engage"])
    assert client.send_batch("engage", [profile()], wait=wait).ok
    by_engage = _lines(caplog)[len(first) :]
    a_minute_passes(monkeypatch)
    controls.fail_next(1, 429, endpoints=["track"])
    assert client.send_batch("track", [event()], wait=wait).ok
    later = _lines(caplog)[len(first) + len(by_engage) :]
    assert len(wait.delays) == 6  # every failure was retried, and every one logged or counted
    [line] = first
    assert line.startswith(f"{name}: retrying 2 record(s) to /track in 0.0s (retry 1, 0.0s of ")
    assert "s of its 60s retry budget spent; one line a minute while retries go on): " in line
    assert line.endswith(
        "HTTP 503: Service temporarily unavailable; retry the request with backoff."
    )
    [line] = by_engage  # another endpoint has lines of its own
    assert line.startswith(f"{name}: retrying 1 record(s) to /engage in ")
    [line] = later
    assert "(retry 1, " in line
    assert "; and 3 other retries to /track since the last line;" in line
    assert "HTTP 429" in line


def test_what_is_counted_is_said_by_a_call_ending_a_minute_later_with_its_last_answer(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review R30: a second burst within a minute of a line, and nothing after it, was said
    only at exit (a forwarder between incidents: days later)."""
    name = unique_name()
    client = IngestionClient(settings_for(mixpanel_emulator), FAST, name=name)
    controls = mixpanel_emulator.client
    caplog.set_level(logging.WARNING, logger="mixpanel_core.ingestion")
    controls.fail_next(1, 503, endpoints=["track"])
    assert client.send_batch("track", [event()], wait=RecordingWait()).ok
    controls.fail_next(2, 502, endpoints=["track"])
    assert client.send_batch("track", [event()], wait=RecordingWait()).ok
    assert len(_lines(caplog)) == 1  # counted, within the minute
    a_minute_passes(monkeypatch)
    assert client.send_batch("track", [event()], wait=RecordingWait()).ok  # no retry at all
    assert _lines(caplog)[1] == (
        f"{name}: 2 more retries to /track since the last line (the last after: HTTP 502: "
        "Bad gateway; retry the request with backoff.)"
    )


def test_clients_of_one_name_share_the_count_so_one_per_request_is_not_a_line_each(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique_name()
    caplog.set_level(logging.WARNING, logger="mixpanel_core.ingestion")
    for _ in range(5):  # a client per web request
        client = IngestionClient(settings_for(mixpanel_emulator), FAST, name=name)
        mixpanel_emulator.client.fail_next(2, 503, endpoints=["track"])
        assert client.send_batch("track", [event()], wait=RecordingWait()).ok
        client.close()
    assert len(_lines(caplog)) == 1


def test_a_retry_its_wait_was_cut_short_of_is_not_counted(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique_name()
    client = IngestionClient(settings_for(mixpanel_emulator), FAST, name=name)
    caplog.set_level(logging.WARNING, logger="mixpanel_core.ingestion")
    mixpanel_emulator.client.fail_next(1, 503, endpoints=["track"])
    assert client.send_batch("track", [event()], wait=RecordingWait()).ok  # the first line
    mixpanel_emulator.client.fail_next(1, 503, endpoints=["track"])
    stopped = client.send_batch("track", [event()], wait=lambda seconds: False)
    assert not stopped.ok
    a_minute_passes(monkeypatch)
    assert client.send_batch("track", [event()], wait=RecordingWait()).ok
    assert len(_lines(caplog)) == 1  # the retry not made left nothing to say


class ShipperDown(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise RuntimeError("log shipper down")


def test_a_logging_handler_that_raises_does_not_stop_the_retry(
    mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R30: the handler's error came out of the retry loop: the record that the retry
    would have delivered was reported FAILED (``buffered_http``) or raised (``http``)."""
    logger = logging.getLogger("mixpanel_core.ingestion")
    handler = ShipperDown()
    logger.addHandler(handler)
    try:
        client = IngestionClient(settings_for(mixpanel_emulator), FAST, name=unique_name())
        mixpanel_emulator.client.fail_next(1, 503, endpoints=["track"])
        assert client.send_batch("track", [event()], wait=RecordingWait()).ok
    finally:
        logger.removeHandler(handler)
    assert mixpanel_emulator.client.stats()["requests"]["track"] == {"503": 1, "200": 1}
    err = capsys.readouterr().err
    assert "--- a handler of the logger 'mixpanel_core.ingestion' failed:" in err
    assert "RuntimeError: log shipper down" in err


PROGRAM_START = """
import atexit, logging, sys
from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorClient

http = {"type": "http", "backoff_base": 0.001, "backoff_cap": 0.002}
table = {"mixpanel": {"api_host": sys.argv[1]}, "transports": {"default": http}}
config = config_from_mapping(table)
"""
"""What each program run below starts with: a client of the ``http`` transport (never closed)
to the emulator at ``sys.argv[1]``, retrying at once."""


def exit_lines(program: str, emulator: Emulator) -> list[str]:
    """The lines ``PROGRAM_START`` then ``program`` wrote to stderr, in a process of its own."""
    finished = run_python(PROGRAM_START + textwrap.dedent(program), emulator.base_url)
    assert finished.returncode == 0, finished.stderr
    return finished.stderr.splitlines()


def assert_one_line_then_two_more_at_exit(lines: list[str]) -> None:
    assert len(lines) == 2, lines
    assert lines[0].startswith("default: retrying 1 record(s) to /track in ")
    assert lines[1].startswith("default: 2 more retries to /track since the last line (the last ")


def test_what_is_left_unsaid_is_said_at_exit(mixpanel_emulator: Emulator) -> None:
    """A client never closed (the ``http`` transport, ``compat.Consumer``): at exit, before
    the exit hooks the application registered as it started (review R31: its logging
    stopped at exit took the line with it)."""
    lines = exit_lines(
        """
        class Shipper(logging.Handler):
            stopped = False

            def emit(self, record):
                if not self.stopped:
                    print(record.getMessage(), file=sys.stderr)

        shipper = Shipper()
        logging.getLogger().addHandler(shipper)
        atexit.register(lambda: setattr(shipper, "stopped", True))  # as a QueueListener's stop
        EmulatorClient(sys.argv[1]).fail_next(3, 503, endpoints=["track"])
        mp = Mixpanel("emulator-token", config=config)
        mp.track("user-1", "signup")  # and no close: the exit says what is left
        """,
        mixpanel_emulator,
    )
    assert_one_line_then_two_more_at_exit(lines)


def test_the_retries_of_what_an_application_sends_at_exit_are_said_too(
    mixpanel_emulator: Emulator,
) -> None:
    """Review R32: an exit hook the application registered before its first client (one
    that sends a last event) runs after the line its first client registered."""
    lines = exit_lines(
        """
        logging.basicConfig(level=logging.WARNING, format="%(message)s")

        def shutdown():
            EmulatorClient(sys.argv[1]).fail_next(3, 503, endpoints=["track"])
            mp.track("user-1", "shutdown")

        atexit.register(shutdown)
        mp = Mixpanel("emulator-token", config=config)
        mp.track("user-1", "signup")
        """,
        mixpanel_emulator,
    )
    assert_one_line_then_two_more_at_exit(lines)
    assert mixpanel_emulator.client.stats()["accepted"]["track"] == 2
