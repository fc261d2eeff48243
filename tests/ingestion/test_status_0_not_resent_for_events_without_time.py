"""A ``status: 0`` for /track events without a ``time`` is not narrowed down by resending.

Mixpanel deduplicates an event on its name, distinct_id, time and ``$insert_id``, and stamps
one sent without a ``time`` with the time it arrives: every copy of it is a new event. The
halves used to be resent whenever each event had an ``$insert_id``, so the valid events of
such a request were counted several times (18 stored and counted for 7 sent). ``track()``
always sets ``time``; events built by hand (the drop-in ``Consumer``, ``send_records``) may not.
"""

from __future__ import annotations

import time

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.frozen import freeze
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.messages import Event

from .conftest import TOKEN, event

pytestmark = pytest.mark.integration


def untimed(n: int, token: str = TOKEN) -> Event:
    properties = {"token": token, "distinct_id": "u", "$insert_id": f"untimed-{n:04d}"}
    return Event(freeze({"event": "e", "properties": properties}, Event.kind))


def test_events_without_a_time_are_rejected_together_and_not_resent(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    batch = [untimed(0), untimed(1), untimed(2, token="not-a-project-token"), untimed(3)]

    result = client.send_batch("track", batch)

    assert [r.status for r in result.reports] == [DeliveryStatus.REJECTED] * 4
    reason = result.reports[0].reason or ""
    assert "without a time, or dated more than an hour ahead, would count them twice" in reason
    assert "may have applied the valid ones" in reason
    stats = mixpanel_emulator.client.stats()
    assert stats["requests"]["track"] == {"200": 1}, "not resent"
    assert stats["unique_events"] == 3, "each valid event counted once"


def test_one_event_without_a_time_keeps_the_whole_request_from_being_resent(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    batch = [event(), untimed(0), event(token="not-a-project-token")]

    result = client.send_batch("track", batch)

    assert [r.status for r in result.reports] == [DeliveryStatus.REJECTED] * 3
    assert mixpanel_emulator.client.stats()["requests"]["track"] == {"200": 1}


def test_an_event_dated_more_than_an_hour_ahead_keeps_its_request_from_being_resent(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    """Review R20: Mixpanel gives such an event its arrival time, as one without a time, and
    its copies were counted as many events (the emulator does so since 21c9796)."""
    ahead = event(time=time.time() + 2 * 3600)
    batch = [event(), ahead, event(token="not-a-project-token")]

    result = client.send_batch("track", batch)

    assert [r.status for r in result.reports] == [DeliveryStatus.REJECTED] * 3
    stats = mixpanel_emulator.client.stats()
    assert stats["requests"]["track"] == {"200": 1}, "not resent"
    assert stats["unique_events"] == 2
