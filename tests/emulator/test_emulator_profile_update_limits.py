"""/engage and /groups hold profile updates to the limits of every record (MIXPANEL_API.md,
Limits): fewer than 255 properties in an operation's map, fewer than 255 entries in a nested
object or list, nesting at most 3 deep, under 1 MB of JSON, long strings truncated, not
refused; /engage takes at most 2,000 updates per request; /groups checks each update's
``$token`` as /engage does.

Before these, only /import events were sent at those limits: a check dropped from the profile
path left every emulator test green while the emulator accepted what Mixpanel refuses.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"


def _person(**operations: Any) -> dict[str, Any]:
    return {"$token": TOKEN, "$distinct_id": "u1", **operations}


def _group(**operations: Any) -> dict[str, Any]:
    return {"$token": TOKEN, "$group_key": "company", "$group_id": "acme", **operations}


BUILDERS = {"engage": _person, "groups": _group}


def _post(emulator: Emulator, endpoint: str, updates: list[dict[str, Any]]) -> dict[str, Any]:
    answer = requests.post(f"{emulator.base_url}/{endpoint}?verbose=1", json=updates, timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("endpoint", ["engage", "groups"])
@pytest.mark.parametrize("operation", ["$set", "$set_once"])
def test_an_operation_map_of_255_properties_is_refused_and_254_kept(
    mixpanel_emulator: Emulator, endpoint: str, operation: str
) -> None:
    build = BUILDERS[endpoint]
    kept = build(**{operation: {f"p{i}": i for i in range(254)}})
    refused = build(**{operation: {f"p{i}": i for i in range(255)}})

    body = _post(mixpanel_emulator, endpoint, [kept, refused])

    assert body["status"] == 0
    assert f"record 1: {operation}: " in body["error"]
    assert "record 0" not in body["error"]
    assert mixpanel_emulator.records(endpoint) == [kept]


@pytest.mark.parametrize("endpoint", ["engage", "groups"])
def test_nested_objects_and_lists_of_255_entries_are_refused(
    mixpanel_emulator: Emulator, endpoint: str
) -> None:
    build = BUILDERS[endpoint]
    kept = build(**{"$union": {"tags": list(range(254))}})
    long_list = build(**{"$union": {"tags": list(range(255))}})
    wide_object = build(**{"$set": {"address": {f"k{i}": i for i in range(255)}}})

    body = _post(mixpanel_emulator, endpoint, [kept, long_list, wide_object])

    assert body["status"] == 0
    assert "record 1: $union.tags: " in body["error"]
    assert "record 2: $set.address: " in body["error"]
    assert mixpanel_emulator.records(endpoint) == [kept]


@pytest.mark.parametrize("endpoint", ["engage", "groups"])
def test_nesting_deeper_than_three_levels_is_refused(
    mixpanel_emulator: Emulator, endpoint: str
) -> None:
    build = BUILDERS[endpoint]
    three = build(**{"$set": {"a": {"b": [{"c": 1}]}}})
    four = build(**{"$set": {"a": {"b": [{"c": {"d": 1}}]}}})

    body = _post(mixpanel_emulator, endpoint, [three, four])

    assert body["status"] == 0
    assert "record 1: $set.a.b.0.c: " in body["error"]
    assert mixpanel_emulator.records(endpoint) == [three]


@pytest.mark.parametrize("endpoint", ["engage", "groups"])
def test_an_update_of_1_mb_is_refused(mixpanel_emulator: Emulator, endpoint: str) -> None:
    build = BUILDERS[endpoint]
    # 200 lists of 20 strings of 250 characters: every other limit is kept, only the size
    # (about 1.02 MB) is over.
    big = build(**{"$set": {f"p{i}": ["x" * 250] * 20 for i in range(200)}})
    small = build(**{"$set": {"plan": "pro"}})

    body = _post(mixpanel_emulator, endpoint, [big, small])

    assert body["status"] == 0
    assert "record 0: record: " in body["error"]
    assert "1 MB" in body["error"]
    assert mixpanel_emulator.records(endpoint) == [small]


@pytest.mark.parametrize("endpoint", ["engage", "groups"])
def test_long_strings_of_an_update_are_truncated_not_refused(
    mixpanel_emulator: Emulator, endpoint: str
) -> None:
    build = BUILDERS[endpoint]
    update = build(**{"$set": {"note": "n" * 300, "tags": ["t" * 300], "nested": {"d": "d" * 300}}})

    body = _post(mixpanel_emulator, endpoint, [update])

    assert body == {"status": 1, "error": None}
    (stored,) = mixpanel_emulator.records(endpoint)
    assert stored["$set"] == {"note": "n" * 255, "tags": ["t" * 255], "nested": {"d": "d" * 255}}


def test_engage_takes_2000_updates_in_one_request_and_refuses_2001_whole(
    mixpanel_emulator: Emulator,
) -> None:
    def updates(count: int) -> list[dict[str, Any]]:
        return [{**_person(**{"$set": {"n": i}}), "$distinct_id": f"u{i}"} for i in range(count)]

    assert _post(mixpanel_emulator, "engage", updates(2000)) == {"status": 1, "error": None}
    answer = requests.post(
        mixpanel_emulator.base_url + "/engage?verbose=1", json=updates(2001), timeout=30
    )

    assert answer.status_code == 400
    assert answer.json()["status"] == 0
    assert "at most 2000" in answer.json()["error"]
    assert len(mixpanel_emulator.records("engage")) == 2000


def test_groups_refuse_an_update_with_a_wrong_or_missing_token(
    mixpanel_emulator: Emulator,
) -> None:
    good = _group(**{"$set": {"n": 1}})
    wrong = {**good, "$token": "not-the-token"}
    missing = {key: value for key, value in good.items() if key != "$token"}

    body = _post(mixpanel_emulator, "groups", [good, wrong, missing])

    assert body["status"] == 0
    assert "record 1: $token" in body["error"]
    assert "record 2: $token" in body["error"]
    assert "not-the-token" not in body["error"]
    assert mixpanel_emulator.records("groups") == [good]
