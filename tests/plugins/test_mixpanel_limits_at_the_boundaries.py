"""Each of Mixpanel's numeric limits, one step either side of it, on both of the validator's
paths: the one expression a plain tracked event passes (``event``) and the full checks every
other message takes (``import``). A limit off by one on either path lets through what Mixpanel
refuses, to be found later among dead letters, or refuses what it takes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mixpanel_core.api_limits import (
    MAX_DEPTH,
    MAX_FUTURE_SECONDS,
    MAX_PROPERTIES,
    MAX_RECORD_BYTES,
    TRACK_SEND_MARGIN,
    TRACK_WINDOW_SECONDS,
)
from mixpanel_core.errors import Problem
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event, ImportEvent
from plugins.mixpanel_limits import MixpanelLimits

NOW = 1_700_000_000.0
KINDS = [pytest.param(Event, id="track"), pytest.param(ImportEvent, id="import")]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: NOW)


def _record(**properties: Any) -> dict[str, Any]:
    """A valid event (its `$insert_id` of letters and digits, as the plain-event path takes
    it), with ``properties`` added or replaced."""
    props = {
        "token": "tok",
        "distinct_id": "user-1",
        "time": NOW - 60,
        "$insert_id": "0123456789abcdef",
    }
    return {"event": "E", "properties": {**props, **properties}}


def _problems(kind: type[Event], **properties: Any) -> list[Problem]:
    message = kind(freeze(_record(**properties), ""))
    return MixpanelLimits().mixpanel_validate(message) or []


def _fields(problems: list[Problem]) -> list[str]:
    return [problem.field for problem in problems]


@pytest.mark.parametrize("kind", KINDS)
def test_properties_must_be_fewer_than_255(kind: type[Event]) -> None:
    # Four of the record's own (token, distinct_id, time, $insert_id), the rest added.
    under = {f"p{n}": n for n in range(MAX_PROPERTIES - 1 - 4)}
    at = {f"p{n}": n for n in range(MAX_PROPERTIES - 4)}

    assert _problems(kind, **under) == []
    assert _fields(_problems(kind, **at)) == ["properties"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_record_must_be_under_1_mb_of_json(kind: type[Event]) -> None:
    empty = len(kind(freeze(_record(pad=""), "")).json())
    under = "x" * (MAX_RECORD_BYTES - 1 - empty)
    at = "x" * (MAX_RECORD_BYTES - empty)
    assert len(kind(freeze(_record(pad=at), "")).json()) == MAX_RECORD_BYTES

    assert _problems(kind, pad=under) == []
    [problem] = _problems(kind, pad=at)
    assert problem.field == "record"
    assert "under 1 MB" in problem.rule


def test_a_tracked_event_must_be_of_the_last_five_days_less_an_hour() -> None:
    """Review R20: checked once, an event 5 days less a second old was sent on a retry after
    the 5 days, and Mixpanel's /track drops such an event with a success answer: it was
    reported ACCEPTED and lost. It is refused an hour before, the time it may wait."""
    oldest = NOW - TRACK_WINDOW_SECONDS + TRACK_SEND_MARGIN
    assert _problems(Event, time=oldest + 60) == []
    for when in (oldest - 60, NOW - TRACK_WINDOW_SECONDS + 1, NOW - TRACK_WINDOW_SECONDS - 3600):
        [problem] = _problems(Event, time=when)
        assert problem.field == "properties.time"
        assert "older than 5 days less an hour" in problem.rule


@pytest.mark.parametrize("kind", KINDS)
def test_a_time_may_be_up_to_an_hour_ahead_and_no_more(kind: type[Event]) -> None:
    assert _problems(kind, time=NOW + MAX_FUTURE_SECONDS) == []
    [problem] = _problems(kind, time=NOW + MAX_FUTURE_SECONDS + 0.5)
    assert problem.field == "properties.time"
    assert "1 hour in the future" in problem.rule


def test_an_imported_event_needs_an_insert_id() -> None:
    [problem] = _problems(ImportEvent, **{"$insert_id": None})
    assert (problem.field, problem.rule) == ("properties.$insert_id", "is required on /import")


def _lists(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("kind", KINDS)
def test_lists_inside_lists_nest_three_deep_and_no_more(kind: type[Event]) -> None:
    assert _problems(kind, tags=_lists(MAX_DEPTH)) == []
    [problem] = _problems(kind, tags=_lists(MAX_DEPTH + 1))
    assert problem.field == "properties.tags[0][0][0]"
    assert f"deeper than {MAX_DEPTH}" in problem.rule
