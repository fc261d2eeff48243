"""An event's special fields must have the type MIXPANEL_API.md gives them, on /track and
/import alike: ``time`` a number of seconds or milliseconds (not a boolean, not text), a
``distinct_id`` that is a string or a number (not a list, an object or a boolean), and an
``$insert_id`` that is text. Each wrong one is refused naming its field, and the valid events
of the same request are kept.

These cases were sent before only to compare the emulator's fast path with its full checks,
which a rule missing from both passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
SERVICE_ACCOUNT = ("sa-user", "sa-secret")

WRONG_TYPES = [
    ("time", True),
    ("time", "1700000000"),
    ("distinct_id", ["u1"]),
    ("distinct_id", {"id": "u1"}),
    ("distinct_id", False),
    ("$insert_id", 12345),
]


def _refused_fields(emulator: Emulator, endpoint: str, events: list[dict[str, Any]]) -> str:
    """The failures the endpoint reports, as text naming record and field."""
    if endpoint == "track":
        answer = requests.post(emulator.base_url + "/track?verbose=1", json=events, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == 0
        return str(answer.json()["error"])
    answer = requests.post(
        emulator.base_url + "/import",
        json=events,
        params={"project_id": "12345", "strict": "1"},
        auth=SERVICE_ACCOUNT,
        timeout=10,
    )
    assert answer.status_code == 400, answer.text
    return "; ".join(
        f"record {entry['index']}: {entry['field']}" for entry in answer.json()["failed_records"]
    )


@pytest.mark.parametrize("endpoint", ["track", "import"])
@pytest.mark.parametrize(("field", "value"), WRONG_TYPES)
def test_a_special_field_of_the_wrong_type_is_refused_naming_it(
    mixpanel_emulator: Emulator, make_event: MakeEvent, endpoint: str, field: str, value: object
) -> None:
    good = make_event()
    wrong = make_event(**{field: value})

    refused = _refused_fields(mixpanel_emulator, endpoint, [good, wrong])

    assert f"record 1: properties.{field}" in refused
    assert "record 0" not in refused
    assert mixpanel_emulator.records(endpoint) == [good]


@pytest.mark.parametrize("endpoint", ["track", "import"])
def test_a_number_distinct_id_is_accepted(
    mixpanel_emulator: Emulator, make_event: MakeEvent, endpoint: str
) -> None:
    events = [make_event(distinct_id=42), make_event(distinct_id=7.5)]
    url = f"{mixpanel_emulator.base_url}/{endpoint}"

    answer = requests.post(
        url, json=events, params={"project_id": "12345", "strict": "1"}, auth=SERVICE_ACCOUNT
    )

    assert answer.status_code == 200, answer.text
    assert mixpanel_emulator.records(endpoint) == events
