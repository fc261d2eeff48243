"""/groups takes the group operations only: ``$add`` and ``$append`` are /engage's."""

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
