"""An event needs a name: ``"event": ""`` is a failed record on /track and /import."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
PostImport = Callable[..., requests.Response]


def test_track_refuses_an_event_with_an_empty_name(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    # The fast path breaks out on an empty name and the full checks decide; with their
    # check gone the record was kept, and no test sent one.
    good, nameless = make_event(), make_event("")
    body = requests.post(
        mixpanel_emulator.base_url + "/track?verbose=1", json=[good, nameless]
    ).json()
    assert body["status"] == 0
    assert "record 1: event" in body["error"]
    assert mixpanel_emulator.records("track") == [good]


def test_strict_import_reports_an_event_with_an_empty_name(
    make_event: MakeEvent, post_import: PostImport
) -> None:
    answer = post_import([make_event(""), make_event()])
    assert answer.status_code == 400
    body = answer.json()
    assert body["num_records_imported"] == 1
    failed = [(entry["index"], entry["field"]) for entry in body["failed_records"]]
    assert failed == [(0, "event")]
