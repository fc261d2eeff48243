"""``$unset`` takes a list of property names (docs/plugins.md): a list holding anything else
(a number, an object) names no property, and is refused before sending, on /engage and
/groups alike."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import Mixpanel, ValidationError
from mixpanel_core.testing import MemoryTransport


def _people(client: Mixpanel, names: Any) -> None:
    client.people_unset("user-1", names)


def _group(client: Mixpanel, names: Any) -> None:
    client.group_unset("company", "acme", names)


@pytest.mark.parametrize("unset", [_people, _group])
def test_a_list_of_names_is_sent(unset: Any) -> None:
    transport = MemoryTransport()

    unset(Mixpanel("token", transport), ["plan", "seats"])

    [record] = transport.records()
    assert record["$unset"] == ["plan", "seats"]


@pytest.mark.parametrize("unset", [_people, _group])
@pytest.mark.parametrize("names", [[1], ["plan", {"seats": 1}], ["plan", None]])
def test_a_list_holding_other_than_names_is_refused(unset: Any, names: list[Any]) -> None:
    transport = MemoryTransport()

    with pytest.raises(ValidationError) as raised:
        unset(Mixpanel("token", transport), names)

    assert transport.records() == []
    assert [p.field for p in raised.value.problems] == ["$unset"]
