"""A nested object or list property must hold fewer than 255 keys or elements, as the record's
properties must: at 255 Mixpanel refuses the record, so the validator must too, naming it."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import Mixpanel, ValidationError
from mixpanel_core.api_limits import MAX_PROPERTIES
from mixpanel_core.testing import MemoryTransport

UNDER = MAX_PROPERTIES - 1


def _object(size: int) -> dict[str, int]:
    return {f"k{n}": n for n in range(size)}


def _list(size: int) -> list[int]:
    return list(range(size))


@pytest.mark.parametrize(
    ("make", "what"), [pytest.param(_object, "keys", id="object"), (_list, "elements")]
)
def test_a_nested_value_of_254_is_sent_and_one_of_255_refused(make: Any, what: str) -> None:
    transport = MemoryTransport()
    client = Mixpanel("token", transport)

    client.track("user-1", "E", {"nested": make(UNDER)})
    with pytest.raises(ValidationError) as raised:
        client.track("user-1", "E", {"nested": make(MAX_PROPERTIES)})

    assert len(transport.records()) == 1
    [problem] = raised.value.problems
    assert problem.field == "properties.nested"
    assert f"has {MAX_PROPERTIES} {what}" in problem.rule


def test_the_count_holds_inside_a_list_and_in_a_profile_operation() -> None:
    client = Mixpanel("token", MemoryTransport())

    with pytest.raises(ValidationError) as in_list:
        client.track("user-1", "E", {"rows": [_object(MAX_PROPERTIES)]})
    with pytest.raises(ValidationError) as in_set:
        client.people_set("user-1", {"nested": _object(MAX_PROPERTIES)})

    assert [p.field for p in in_list.value.problems] == ["properties.rows[0]"]
    assert [p.field for p in in_set.value.problems] == ["$set.nested"]


@pytest.mark.parametrize("operation", ["people_set", "people_set_once", "people_union"])
def test_a_profile_operation_of_255_properties_is_refused(operation: str) -> None:
    transport = MemoryTransport()
    client = Mixpanel("token", transport)
    set_properties = getattr(client, operation)

    set_properties("user-1", _object(UNDER))
    with pytest.raises(ValidationError) as raised:
        set_properties("user-1", _object(MAX_PROPERTIES))

    assert len(transport.records()) == 1
    [problem] = raised.value.problems
    assert problem.field.startswith("$")
    assert f"has {MAX_PROPERTIES} properties" in problem.rule
