"""An event sent to /track without ``time`` is never counted a duplicate of another delivery.

Mixpanel deduplicates on (event name, time, distinct_id, $insert_id) (MIXPANEL_API.md) and
stamps an event that has no ``time`` with its arrival time, so two deliveries of it arrive with
two different times: both are counted. The emulator read the missing time as one shared value
and counted the second delivery a duplicate, so a client omitting ``time`` looked safe to retry
in every test while Mixpanel would count each retry.
"""

from __future__ import annotations

import time

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"


def test_a_timeless_event_delivered_twice_is_counted_twice(mixpanel_emulator: Emulator) -> None:
    timeless = {
        "event": "Signed Up",
        "properties": {"token": TOKEN, "distinct_id": "u1", "$insert_id": "retried-1"},
    }
    url = mixpanel_emulator.base_url + "/track"

    answers = [requests.post(url, json=timeless, timeout=10).text for _ in range(2)]

    assert answers == ["1", "1"]
    stats = mixpanel_emulator.stats()
    assert (stats["unique_events"], stats["duplicate_events"]) == (2, 0)
    assert mixpanel_emulator.insert_ids("track") == ["retried-1", "retried-1"]
    assert mixpanel_emulator.records("track") == [timeless, timeless]


def test_the_same_event_with_its_time_is_still_counted_once(mixpanel_emulator: Emulator) -> None:
    timed = {
        "event": "Signed Up",
        "properties": {
            "token": TOKEN,
            "distinct_id": "u1",
            "$insert_id": "retried-2",
            "time": int(time.time()),
        },
    }
    url = mixpanel_emulator.base_url + "/track"

    for _ in range(2):
        assert requests.post(url, json=[timed], timeout=10).text == "1"

    stats = mixpanel_emulator.stats()
    assert (stats["unique_events"], stats["duplicate_events"]) == (1, 1)
    assert mixpanel_emulator.insert_ids("track") == ["retried-2", "retried-2"]
