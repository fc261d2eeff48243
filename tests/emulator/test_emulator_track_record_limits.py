"""/track holds events to the limits of every record (MIXPANEL_API.md, Limits): fewer than 255
properties, fewer than 255 entries in a list or nested object, nesting at most 3 deep, under
1 MB of JSON; and its window of 5 days reads a ``time`` in milliseconds as well as in seconds.

Each refused event answers HTTP 200 with status 0 naming it, and the valid events of the same
request are kept (an event older than the window is no refusal: it is dropped silently). Before
these, the limits were sent at their edge to /import only, and /track only by comparing its
fast path with its full checks, which a check missing from both passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
FIVE_DAYS = 5 * 86400


def _track(emulator: Emulator, events: list[dict[str, Any]]) -> dict[str, Any]:
    answer = requests.post(emulator.base_url + "/track?verbose=1", json=events, timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    body: dict[str, Any] = answer.json()
    return body


def _kept(emulator: Emulator) -> list[str]:
    return [record["properties"]["$insert_id"] for record in emulator.records("track")]


def test_an_event_of_255_properties_is_refused_and_254_kept(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    def with_properties(count: int) -> dict[str, Any]:
        event = make_event()
        extra = count - len(event["properties"])
        event["properties"].update({f"p{i}": i for i in range(extra)})
        assert len(event["properties"]) == count
        return event

    kept, refused = with_properties(254), with_properties(255)

    body = _track(mixpanel_emulator, [kept, refused])

    assert body["status"] == 0
    assert "record 1: properties: " in body["error"]
    assert "record 0" not in body["error"]
    assert _kept(mixpanel_emulator) == [kept["properties"]["$insert_id"]]


def test_lists_and_nested_objects_of_255_entries_and_deep_nesting_are_refused(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    kept = make_event(items=list(range(254)), a={"b": [{"c": 1}]})
    events = [
        kept,
        make_event(items=list(range(255))),
        make_event(nested={f"k{i}": i for i in range(255)}),
        make_event(a={"b": [{"c": {"d": 1}}]}),
    ]

    body = _track(mixpanel_emulator, events)

    assert body["status"] == 0
    assert body["error"].startswith("3 of 4 records failed validation")
    assert "record 1: properties.items: " in body["error"]
    assert "record 2: properties.nested: " in body["error"]
    assert "record 3: properties.a.b.0.c: " in body["error"]
    assert _kept(mixpanel_emulator) == [kept["properties"]["$insert_id"]]


def test_an_event_of_1_mb_is_refused(mixpanel_emulator: Emulator, make_event: MakeEvent) -> None:
    # 200 properties of 5,000 characters would be truncated to 255 when stored, but the size
    # counted is the JSON as sent: about 1.0 MB.
    big = make_event(**{f"p{i}": "x" * 5000 for i in range(200)})
    small = make_event()

    body = _track(mixpanel_emulator, [big, small])

    assert body["status"] == 0
    assert "record 0: record: " in body["error"]
    assert "1 MB" in body["error"]
    assert _kept(mixpanel_emulator) == [small["properties"]["$insert_id"]]


def test_the_five_day_window_reads_milliseconds_as_it_reads_seconds(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    now = time.time()
    recent = make_event(time=round((now - FIVE_DAYS + 600) * 1000))
    old = make_event(time=round((now - FIVE_DAYS - 600) * 1000))

    body = _track(mixpanel_emulator, [recent, old])

    # Mixpanel drops the old one silently: the answer is as without it.
    assert body == {"status": 1, "error": None}
    assert _kept(mixpanel_emulator) == [recent["properties"]["$insert_id"]]
    assert mixpanel_emulator.stats()["dropped_old"]["track"] == 1
