"""A ``Retry-After`` longer than the retry budget holds the sender, not only its request.

The request it answered is given up on (its wait would outlast its budget), but the sender
sent the next one a linger later: through an incident of such answers every request was
tried once and written off (the dead-letter file filled with the incident's traffic, a
warning a request), at a dozen requests a second to a server that had asked for quiet.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson
import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

from .test_buffered_http import _FAST, make_event

pytestmark = pytest.mark.integration

RETRY_AFTER = 3.0


def _transport(emulator: Emulator, reports: list[DeliveryReport]) -> BufferedHttpTransport:
    settings = MixpanelSettings(api_host=emulator.base_url, token="emulator-token")
    options = BufferedHttpOptions(**{**_FAST, "retry_budget": 1.0})  # type: ignore[arg-type]
    return BufferedHttpTransport(settings, options, report=reports.append)


def dead_lettering(emulator: Emulator, dead: Path, **options: object) -> BufferedHttpTransport:
    """A fast-retrying transport with ``options``, its dead letters written to ``dead``."""
    settings = MixpanelSettings(api_host=emulator.base_url, token="emulator-token")
    merged = {**_FAST, "dead_letter_path": str(dead), **options}
    return BufferedHttpTransport(settings, BufferedHttpOptions(**merged))  # type: ignore[arg-type]


def _held(emulator: Emulator, dead: Path, **options: object) -> BufferedHttpTransport:
    """``dead_lettering`` with a budget a Retry-After of an hour outlasts, and a
    ``block_timeout`` a send that waits it out shows."""
    return dead_lettering(emulator, dead, retry_budget=1.0, block_timeout=5.0, **options)


def _dead_insert_ids(dead: Path) -> list[str]:
    lines = dead.read_bytes().splitlines()
    return [orjson.loads(line)["record"]["properties"]["$insert_id"] for line in lines]


def _track_requests(emulator: Emulator) -> dict[str, int]:
    return dict(emulator.client.stats()["requests"].get("track", {}))


def _wait_for(reports: list[DeliveryReport], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(reports) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(reports) >= count, reports


def test_nothing_is_sent_until_a_retry_after_beyond_the_budget_has_passed(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    reports: list[DeliveryReport] = []
    transport = _transport(mixpanel_emulator, reports)
    mixpanel_emulator.client.fail_next(1, 503, endpoints=["track"], retry_after=RETRY_AFTER)
    with caplog.at_level(logging.WARNING, logger="mixpanel_core.buffering"):
        transport.send(make_event("asked", 0))
        _wait_for(reports, 1)
        refused_at = time.monotonic()
        for n in range(5):
            transport.send(make_event("later", n))
        time.sleep(1.0)
        # A linger later the sender used to send these: it holds them instead.
        assert _track_requests(mixpanel_emulator) == {"503": 1}
        _wait_for(reports, 6)  # no flush: a flush sends at once (see below)
        delivered_at = time.monotonic()
    [given_up, *delivered] = reports
    assert (given_up.status, given_up.retry_after) == (DeliveryStatus.FAILED, RETRY_AFTER)
    assert [r.status for r in delivered] == [DeliveryStatus.ACCEPTED] * 5
    assert delivered_at - refused_at >= RETRY_AFTER - 0.5
    assert _track_requests(mixpanel_emulator) == {"503": 1, "200": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("asked to wait 3.0s (Retry-After)" in line for line in warnings), warnings
    transport.close(30)


@pytest.mark.parametrize("ending", ["flush", "close"])
def test_a_flush_or_close_during_the_hold_sends_what_waits_at_once(
    mixpanel_emulator: Emulator, ending: str
) -> None:
    # Held, a flush waited out its whole timeout (30 s by default) and returned everything:
    # an application that flushes after each request stalled for the length of the hold.
    reports: list[DeliveryReport] = []
    transport = _transport(mixpanel_emulator, reports)
    mixpanel_emulator.client.fail_next(1, 429, endpoints=["track"], retry_after=600)
    transport.send(make_event("asked", 0))
    _wait_for(reports, 1)
    transport.send(make_event("waiting", 0))

    started = time.monotonic()
    left = transport.flush(10) if ending == "flush" else transport.close(10)
    took = time.monotonic() - started

    assert left == []
    assert took < 5.0
    assert [r.status for r in reports] == [DeliveryStatus.FAILED, DeliveryStatus.ACCEPTED]
    assert _track_requests(mixpanel_emulator) == {"429": 1, "200": 1}
    transport.close(10)


@pytest.mark.parametrize("when_full", ["block", "drop_newest", "drop_oldest"])
def test_a_long_hold_keeps_half_the_queue_free_and_drops_nothing(
    mixpanel_emulator: Emulator, tmp_path: Path, when_full: str
) -> None:
    # Held for the whole hour, the queue filled: under `block` every send waited its
    # block_timeout and raised, and under the others what was sent was dropped, never
    # dead-lettered. Past half full, each request goes out as before.
    dead = tmp_path / "dead.jsonl"
    transport = _held(mixpanel_emulator, dead, max_queue_messages=20, when_full=when_full)
    mixpanel_emulator.client.fail_fraction(1.0, statuses=(503,), retry_after=3600)
    sent = [make_event("held", n) for n in range(60)]
    for message in sent:
        transport.send(message)  # raises QueueFullError if it waited out block_timeout
        time.sleep(0.02)  # a steady flow: the take held is small, the queue fills behind it
    transport.close(10)

    assert transport.dropped == 0
    assert sorted(_dead_insert_ids(dead)) == sorted(m.insert_id for m in sent)
    requests = sum(_track_requests(mixpanel_emulator).values())
    assert 2 <= requests <= 15, "a request as the queue passes half full, not one a linger"


@pytest.mark.parametrize("batch", [2000, 1])
def test_a_record_larger_than_the_free_half_ends_the_hold_rather_than_wait_for_an_hour(
    mixpanel_emulator: Emulator, tmp_path: Path, batch: int
) -> None:
    # The queue never reached half full, and the record never fit in what was left: under
    # `block` each such send waited out block_timeout and raised, for the whole hour.
    dead = tmp_path / "dead.jsonl"
    # max_batch_records 1: a take leaves the put short of room again.
    transport = _held(mixpanel_emulator, dead, max_queue_bytes=1_000_000, max_batch_records=batch)
    mixpanel_emulator.client.fail_fraction(1.0, statuses=(429,), retry_after=3600)
    transport.send(make_event("small", 0))
    deadline = time.monotonic() + 10
    while not dead.exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # the first request was given up on: the hold began
    transport.send(make_event("small", 1))  # taken, and held while the queue fills
    time.sleep(0.3)
    # Below half full (500,000 bytes), then records that fit only in a queue emptied.
    sent = [make_event("filler", n, blob="x" * 100_000) for n in range(4)]
    sent += [make_event("large", n, blob="x" * 900_000) for n in range(3)]
    started = time.monotonic()
    for message in sent:
        transport.send(message)  # raises QueueFullError if it waited out block_timeout
    took = time.monotonic() - started
    transport.close(10)

    assert took < 4.0
    assert transport.dropped == 0
    assert len(_dead_insert_ids(dead)) == 9
