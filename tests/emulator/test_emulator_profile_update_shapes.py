"""Profile updates the emulator refuses for their shape: a ``$unset`` that is not a list of
property names, and a group update whose ``$group_id`` is empty."""

from __future__ import annotations

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"


def test_engage_unset_must_be_a_list_of_property_names(mixpanel_emulator: Emulator) -> None:
    # The official SDK's people_unset sends a list; a bare name is refused. Without the
    # check, every other test still passed.
    url = mixpanel_emulator.base_url + "/engage?verbose=1"
    as_list = {"$token": TOKEN, "$distinct_id": "u1", "$unset": ["plan"]}
    as_name = {"$token": TOKEN, "$distinct_id": "u1", "$unset": "plan"}
    answer = requests.post(url, json=[as_list, as_name])
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == 0
    assert "record 1: $unset" in body["error"]
    assert "record 0" not in body["error"]
    assert mixpanel_emulator.records("engage") == [as_list]


@pytest.mark.parametrize("endpoint", ["engage", "groups"])
def test_unset_must_name_properties_by_strings(mixpanel_emulator: Emulator, endpoint: str) -> None:
    # Review R66 F4: a list of anything was accepted, though a property name is a string
    # (and the client's own validator refuses such a list).
    ident = (
        {"$distinct_id": "u1"} if endpoint == "engage" else {"$group_key": "co", "$group_id": "a"}
    )
    good = {"$token": TOKEN, **ident, "$unset": ["plan"]}
    bad = {"$token": TOKEN, **ident, "$unset": ["plan", 1, {"x": 1}, None]}
    answer = requests.post(f"{mixpanel_emulator.base_url}/{endpoint}?verbose=1", json=[good, bad])
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == 0
    assert "record 1: $unset" in body["error"]
    assert "property names" in body["error"]
    assert mixpanel_emulator.records(endpoint) == [good]


def test_groups_refuse_an_empty_group_id(mixpanel_emulator: Emulator) -> None:
    url = mixpanel_emulator.base_url + "/groups?verbose=1"
    good = {"$token": TOKEN, "$group_key": "company", "$group_id": "acme", "$set": {"n": 1}}
    empty = {**good, "$group_id": ""}
    answer = requests.post(url, json=[good, empty])
    body = answer.json()
    assert body["status"] == 0
    assert "record 1: $group_id" in body["error"]
    assert mixpanel_emulator.records("groups") == [good]
