"""Duplicate accounting: every accepted event is kept; keys are counted unique or duplicate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
PostImport = Callable[..., requests.Response]


def test_resent_events_are_kept_and_counted_as_duplicates(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    batch = [make_event() for _ in range(3)]
    post_import(batch)
    post_import(batch)
    assert len(mixpanel_emulator.records("import")) == 6
    stats = mixpanel_emulator.stats()
    assert (stats["unique_events"], stats["duplicate_events"]) == (3, 3)


@pytest.mark.parametrize("field", ["event", "time", "distinct_id"])
def test_same_insert_id_with_another_key_field_is_a_different_event(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport, field: str
) -> None:
    first = make_event(**{"$insert_id": "same"})
    second = make_event(**{"$insert_id": "same", "time": first["properties"]["time"]})
    second["properties"]["distinct_id"] = first["properties"]["distinct_id"]
    if field == "event":
        second["event"] = "Other"
    elif field == "time":
        second["properties"]["time"] -= 10
    else:
        second["properties"]["distinct_id"] = "someone-else"
    answer = post_import([first, second])
    # Both accepted (strict): a rejected second record would also leave no duplicate.
    assert answer.status_code == 200
    assert answer.json()["num_records_imported"] == 2
    stats = mixpanel_emulator.stats()
    assert stats["accepted"]["import"] == 2
    assert (stats["unique_events"], stats["duplicate_events"]) == (2, 0)


def test_time_in_seconds_and_milliseconds_dedupe_together(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    seconds = make_event(time=1_700_000_000, **{"$insert_id": "same"})
    millis = {"event": seconds["event"], "properties": {**seconds["properties"]}}
    millis["properties"]["time"] = 1_700_000_000_000
    post_import([seconds, millis])
    assert mixpanel_emulator.stats()["duplicate_events"] == 1


def test_track_and_import_share_the_dedupe_keys(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    event = make_event()
    requests.post(mixpanel_emulator.base_url + "/track", json=event)
    post_import([event])
    assert mixpanel_emulator.stats()["duplicate_events"] == 1


def test_events_without_insert_id_are_each_unique(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    event = make_event()
    del event["properties"]["$insert_id"]
    requests.post(mixpanel_emulator.base_url + "/track", json=[event, event])
    stats = mixpanel_emulator.stats()
    assert (stats["unique_events"], stats["duplicate_events"]) == (2, 0)


def test_insert_ids_are_listed_in_arrival_order_with_duplicates(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    a, b = make_event(), make_event()
    requests.post(mixpanel_emulator.base_url + "/track", json=a)
    post_import([b, a])
    assert mixpanel_emulator.insert_ids() == ["insert-0", "insert-1", "insert-0"]
    assert mixpanel_emulator.insert_ids("import") == ["insert-1", "insert-0"]
    assert mixpanel_emulator.client.insert_ids("track") == ["insert-0"]
