"""/groups takes the group operations only: ``$add`` and ``$append`` are /engage's, refused
alone and next to a group operation."""

from __future__ import annotations

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
GROUP = {"$token": TOKEN, "$group_key": "company", "$group_id": "acme"}


@pytest.mark.parametrize("operation", ["$add", "$append"])
def test_a_group_update_with_only_a_people_operation_is_refused(
    mixpanel_emulator: Emulator, operation: str
) -> None:
    # MIXPANEL_API.md lists a group update's operations: $set, $set_once, $union, $unset,
    # $remove, $delete. An emulator that read /groups with the /engage list accepted these.
    url = mixpanel_emulator.base_url + "/groups?verbose=1"
    good = {**GROUP, "$set": {"size": 3}}
    people_only = {**GROUP, operation: {"size": 1}}
    body = requests.post(url, json=[good, people_only]).json()
    assert body["status"] == 0
    assert "record 1: record: no operation found" in body["error"]
    assert mixpanel_emulator.records("groups") == [good]


@pytest.mark.parametrize("operation", ["$add", "$append"])
def test_a_people_operation_next_to_a_group_operation_is_refused_by_name(
    mixpanel_emulator: Emulator, operation: str
) -> None:
    # Mixpanel would not apply the people operation: storing the update let a test read it back.
    url = mixpanel_emulator.base_url + "/groups?verbose=1"
    mixed = {**GROUP, "$set": {"plan": "pro"}, operation: {"seats": 5}}
    body = requests.post(url, json=[mixed]).json()
    assert body["status"] == 0
    assert f"record 0: {operation}: '{operation}' is an operation on user profiles" in body["error"]
    assert mixpanel_emulator.records("groups") == []
    assert mixpanel_emulator.stats()["rejected"]["groups"] == 1


def test_engage_still_takes_add_and_append_next_to_set(mixpanel_emulator: Emulator) -> None:
    url = mixpanel_emulator.base_url + "/engage?verbose=1"
    update = {
        "$token": TOKEN,
        "$distinct_id": "u1",
        "$set": {"plan": "pro"},
        "$add": {"logins": 1},
        "$append": {"pages": "home"},
    }
    assert requests.post(url, json=[update]).json() == {"status": 1, "error": None}
    assert mixpanel_emulator.records("engage") == [update]
