"""Mixpanel authenticates ``/track``, ``/engage`` and ``/groups`` by the token inside each
record: an alias (sent to ``/track``) or a group update without one is refused there, so the
validator refuses it before sending, naming the field. A merge goes to ``/import``, which
authenticates the request, and needs none."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Alias, GroupUpdate, Merge, Message, PeopleUpdate
from plugins.mixpanel_limits import MixpanelLimits

ALIAS = {"event": "$create_alias", "properties": {"distinct_id": "user-1", "alias": "a-1"}}
MERGE = {"event": "$merge", "properties": {"$distinct_ids": ["user-1", "user-2"]}}
PEOPLE = {"$time": 1, "$distinct_id": "user-1", "$set": {"plan": "pro"}}
GROUP = {"$time": 1, "$group_key": "company", "$group_id": "acme", "$set": {"plan": "pro"}}


def _fields(kind: type[Message], record: dict[str, Any]) -> list[str]:
    problems = MixpanelLimits().mixpanel_validate(kind(freeze(record, ""))) or []
    return [problem.field for problem in problems]


@pytest.mark.parametrize(
    ("kind", "record", "field", "token"),
    [
        pytest.param(Alias, ALIAS, "properties.token", "token", id="alias"),
        pytest.param(PeopleUpdate, PEOPLE, "$token", "$token", id="people"),
        pytest.param(GroupUpdate, GROUP, "$token", "$token", id="group"),
    ],
)
def test_a_record_without_its_token_is_refused(
    kind: type[Message], record: dict[str, Any], field: str, token: str
) -> None:
    with_token = (
        {**record, "properties": {**record["properties"], token: "tok"}}
        if "properties" in record
        else {**record, token: "tok"}
    )

    assert _fields(kind, with_token) == []
    assert _fields(kind, record) == [field]


def test_a_merge_needs_no_token() -> None:
    assert _fields(Merge, MERGE) == []
