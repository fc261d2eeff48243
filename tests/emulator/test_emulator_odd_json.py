"""Valid but odd JSON over real sockets: refused as Mixpanel refuses it (an invalid record, or a
400), never with the retryable 500 of an emulator bug."""

from __future__ import annotations

import time

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

# Integers JSON allows and no float holds: 1e400 and -1e400, written out.
HUGE = "1" + "0" * 400
NEGATIVE_HUGE = "-" + HUGE


def _event_with_time(time: str) -> bytes:
    return (
        '[{"event": "Signed Up", "properties": {"token": "emulator-token",'
        f' "distinct_id": "u1", "$insert_id": "a1", "time": {time}}}}}]'
    ).encode()


@pytest.mark.parametrize("time", [HUGE, NEGATIVE_HUGE])
def test_a_time_beyond_a_floats_range_makes_a_track_record_invalid(
    mixpanel_emulator: Emulator, time: str
) -> None:
    answer = requests.post(
        mixpanel_emulator.base_url + "/track?verbose=1",
        data=_event_with_time(time),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == 0
    assert "record 0: properties.time" in answer.json()["error"]
    assert mixpanel_emulator.records() == []


@pytest.mark.parametrize("time", [HUGE, NEGATIVE_HUGE])
def test_a_time_beyond_a_floats_range_is_a_failed_record_of_a_strict_import(
    mixpanel_emulator: Emulator, time: str
) -> None:
    answer = requests.post(
        mixpanel_emulator.base_url + "/import?strict=1",
        data=_event_with_time(time),
        headers={"Content-Type": "application/json"},
        auth=("emulator-secret", ""),
    )
    assert answer.status_code == 400
    assert [(f["index"], f["field"]) for f in answer.json()["failed_records"]] == [
        (0, "properties.time")
    ]
    assert mixpanel_emulator.records() == []


@pytest.mark.parametrize(
    ("content_type", "path"),
    [("application/json", "/track?verbose=1"), ("application/x-ndjson", "/import")],
)
def test_json_nested_too_deep_to_read_is_400_also_with_a_long_integer(
    mixpanel_emulator: Emulator, content_type: str, path: str
) -> None:
    """A 20-digit integer sends the body through the json module (to keep it exact), which runs
    out of stack on deep nesting where orjson says so itself."""
    deep = "[" * 100_000 + "]" * 100_000
    record = f'{{"event": "E", "properties": {{"n": 12345678901234567890, "a": {deep}}}}}'
    answer = requests.post(
        mixpanel_emulator.base_url + path,
        data=record.encode(),
        headers={"Content-Type": content_type},
        auth=("emulator-secret", ""),
    )
    assert answer.status_code == 400
    assert "nested too deep" in answer.json()["error"]
    assert mixpanel_emulator.records() == []


@pytest.mark.parametrize(("path", "status"), [("/track?verbose=1", 200), ("/import?strict=1", 400)])
@pytest.mark.parametrize(
    ("properties", "named"),
    [
        ('"$insert_id": "ab\\udcff"', "$insert_id"),
        (
            '"$insert_id": "a1", "file\\udcff.txt": {"a": {"b": {"c": {"d": 1}}}}',
            "file\\udcff.txt.a.b.c",
        ),
    ],
    ids=["insert_id", "property name"],
)
def test_a_record_with_a_lone_surrogate_is_answered_not_a_500(
    mixpanel_emulator: Emulator, path: str, status: int, properties: str, named: str
) -> None:
    # A lone surrogate (os.fsdecode's file names), written as the escape the SDK sends: the
    # emulator raised on it, in its fast path or when quoting it in the answer, and answered
    # 500 ("emulator bug"), which a correct client retries for ever.
    body = (
        '[{"event": "E", "properties": {"token": "emulator-token", "distinct_id": "u1",'
        f' "time": {int(time.time()) - 10}, {properties}}}}}]'
    ).encode()
    answer = requests.post(
        mixpanel_emulator.base_url + path,
        data=body,
        headers={"Content-Type": "application/json"},
        auth=("emulator-token", ""),
    )
    assert answer.status_code == status
    assert named in answer.text  # a name is quoted as the escape, in the JSON text
    assert mixpanel_emulator.records() == []
