"""/track settles an event's time as Mixpanel documents, where /import refuses it.

Mixpanel's troubleshooting page (historical events not appearing) says that /track "silently
drops anything older than five days", answering success ("a body of 1 when at least one object
in the payload is well-formed"), and that an event dated in the future is not rejected: its
time "will be overwritten with the current present time at ingestion". The emulator answered
status 0 for both; a test that leaned on that refusal passed where Mixpanel loses the event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from mixpanel_core import Mixpanel, ValidationError
from mixpanel_core.config import ALWAYS_ENABLED_PLUGINS, Config
from mixpanel_core.emulator import Emulator
from mixpanel_core.settings import MixpanelSettings
from transports.http import HttpTransport

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
PostImport = Callable[..., requests.Response]
FIVE_DAYS = 5 * 86400
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _form_post(emulator: Emulator, events: list[dict[str, Any]], verbose: bool) -> str:
    """Post ``events`` to /track form-encoded, as the official SDK does; the answer's text."""
    body = "data=" + quote(json.dumps(events)) + ("&verbose=1" if verbose else "")
    answer = requests.post(emulator.base_url + "/track", data=body, headers=FORM, timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    return answer.text


@pytest.mark.parametrize("verbose", [False, True], ids=["bare", "verbose"])
def test_an_event_older_than_five_days_is_dropped_with_a_success_answer(
    mixpanel_emulator: Emulator, make_event: MakeEvent, verbose: bool
) -> None:
    old = make_event(time=time.time() - FIVE_DAYS - 600)
    recent = make_event()

    alone = _form_post(mixpanel_emulator, [old], verbose)
    with_recent = _form_post(mixpanel_emulator, [recent, old], verbose)

    success = '{"status":1,"error":null}' if verbose else "1"
    assert (alone, with_recent) == (success, success)
    assert mixpanel_emulator.records("track") == [recent]
    assert mixpanel_emulator.insert_ids("track") == [recent["properties"]["$insert_id"]]
    stats = mixpanel_emulator.stats()
    assert stats["dropped_old"]["track"] == 2
    assert stats["rejected"]["track"] == 0
    assert stats["accepted"]["track"] == 1
    assert stats["unique_events"] == 1


def test_dropped_events_are_counted_over_http_and_forgotten_on_reset(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    old = [make_event(time=time.time() - 30 * 86400) for _ in range(3)]
    assert _form_post(mixpanel_emulator, old, verbose=False) == "1"
    stats = requests.get(mixpanel_emulator.base_url + "/_emulator/stats", timeout=30).json()
    assert stats["dropped_old"] == {"track": 3, "engage": 0, "groups": 0, "import": 0}
    assert mixpanel_emulator.client.stats()["dropped_old"]["track"] == 3
    mixpanel_emulator.reset()
    assert mixpanel_emulator.stats()["dropped_old"]["track"] == 0


def test_an_old_event_with_another_problem_is_refused_not_dropped(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    old_and_broken = make_event(time=time.time() - FIVE_DAYS - 600, token="not-this-project")
    answer = requests.post(
        mixpanel_emulator.base_url + "/track?verbose=1", json=[old_and_broken], timeout=30
    ).json()
    assert answer["status"] == 0
    assert "record 0: properties.token" in answer["error"]
    stats = mixpanel_emulator.stats()
    assert (stats["rejected"]["track"], stats["dropped_old"]["track"]) == (1, 0)


def test_import_still_takes_events_older_than_five_days(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    old = make_event(time=time.time() - 30 * 86400)
    assert post_import([old]).json()["num_records_imported"] == 1
    assert mixpanel_emulator.records("import") == [old]
    assert mixpanel_emulator.stats()["dropped_old"]["import"] == 0


@pytest.mark.parametrize("in_milliseconds", [False, True], ids=["seconds", "milliseconds"])
def test_an_event_more_than_an_hour_ahead_is_kept_with_its_arrival_time(
    mixpanel_emulator: Emulator, make_event: MakeEvent, in_milliseconds: bool
) -> None:
    ahead = time.time() + 2 * 3600
    future = make_event(time=round(ahead * 1000) if in_milliseconds else ahead)
    usual = make_event()
    before = time.time()
    # A flat batch of events as the SDK sends them: the path that keeps the request's own text.
    answer = _form_post(mixpanel_emulator, [usual, future], verbose=True)
    after = time.time()

    assert answer == '{"status":1,"error":null}'
    kept = mixpanel_emulator.records("track")
    assert kept[0] == usual
    stored_time = kept[1]["properties"].pop("time")
    assert before <= stored_time <= after
    future["properties"].pop("time")
    assert kept[1] == future  # nothing else changed
    stats = mixpanel_emulator.stats()
    assert (stats["retimed"]["track"], stats["accepted"]["track"]) == (1, 2)


def test_an_event_retimed_before_a_record_that_is_no_event_is_counted_once(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    """Review R20: the fast path retimed it in place, then gave the batch to the full checks
    for the record after it, which found it current: ``retimed`` said 0. (Two braces a record
    in the text: the fast path presumes every record an event with object properties.)"""
    future = make_event(time=time.time() + 2 * 3600, nested={"a": 1})
    other = {"event": "E", "properties": "x"}
    # A JSON body: its text is read for the fast path's presumption, which the other breaks.
    answer = requests.post(
        mixpanel_emulator.base_url + "/track?verbose=1",
        data=json.dumps([future, other]),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )

    assert answer.json()["status"] == 0, answer.text
    stats = mixpanel_emulator.stats()
    assert (stats["retimed"]["track"], stats["accepted"]["track"]) == (1, 1)


def test_an_event_less_than_an_hour_ahead_keeps_its_time(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    soon = make_event(time=time.time() + 3000)
    assert _form_post(mixpanel_emulator, [soon], verbose=False) == "1"
    assert mixpanel_emulator.records("track") == [soon]
    assert mixpanel_emulator.stats()["retimed"]["track"] == 0


def test_the_record_file_holds_the_arrival_time_of_an_event_from_the_future(
    tmp_path: Path, make_event: MakeEvent
) -> None:
    path = tmp_path / "records.jsonl"
    future = make_event(time=time.time() + 86400)
    with Emulator(record_file=path) as emulator:
        before = time.time()
        assert _form_post(emulator, [future], verbose=False) == "1"
        kept = emulator.records("track")
    (line,) = [json.loads(text) for text in path.read_text().splitlines()]
    assert line == {"endpoint": "track", "record": kept[0]}
    assert before <= line["record"]["properties"]["time"] <= time.time()


def test_import_still_refuses_an_event_more_than_an_hour_ahead(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    body = post_import([make_event(time=time.time() + 2 * 3600)]).json()
    assert body["num_records_imported"] == 0
    assert body["failed_records"][0]["field"] == "properties.time"
    assert mixpanel_emulator.records() == []


def _client(emulator: Emulator, config: Config | None = None) -> Mixpanel:
    settings = MixpanelSettings(api_host=emulator.base_url, token="emulator-token")
    return Mixpanel("emulator-token", HttpTransport(settings), config=config)


def test_the_default_plugins_refuse_an_old_event_in_track_before_it_is_lost(
    mixpanel_emulator: Emulator,
) -> None:
    """Mixpanel would answer success and drop it: the client's own check is all that tells."""
    with _client(mixpanel_emulator) as mp:
        with pytest.raises(ValidationError) as raised:
            mp.track("user-1", "Played", {"time": time.time() - FIVE_DAYS - 600})
        assert "properties.time" in {problem.field for problem in raised.value.problems}
        assert sum(mixpanel_emulator.stats()["requests"].get("track", {}).values()) == 0
        mp.track("user-1", "Played")  # the same client does reach the emulator
    assert [record["event"] for record in mixpanel_emulator.records("track")] == ["Played"]


def test_without_the_plugins_an_old_event_is_sent_answered_success_and_lost(
    mixpanel_emulator: Emulator,
) -> None:
    with _client(mixpanel_emulator, Config(plugins=ALWAYS_ENABLED_PLUGINS)) as mp:
        mp.track("user-1", "Played", {"time": time.time() - FIVE_DAYS - 600})  # no error
    stats = mixpanel_emulator.stats()
    assert stats["requests"]["track"] == {"200": 1}
    assert stats["dropped_old"]["track"] == 1
    assert mixpanel_emulator.records("track") == []
