"""A group update's ``$group_id`` is a non-empty string or an integer: the emulator (as
Mixpanel) refuses ``""``, and a boolean, which Python counts among the integers, is no id."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import Mixpanel, ValidationError
from mixpanel_core.testing import MemoryTransport


@pytest.mark.parametrize("group_id", ["acme", 42, 0])
def test_a_string_or_an_integer_group_id_is_sent(group_id: Any) -> None:
    transport = MemoryTransport()

    Mixpanel("token", transport).group_set("company", group_id, {"plan": "pro"})

    [record] = transport.records()
    assert record["$group_id"] == group_id


@pytest.mark.parametrize("group_id", ["", True, False, None, 1.5])
def test_an_empty_boolean_or_other_group_id_is_refused(group_id: Any) -> None:
    transport = MemoryTransport()

    with pytest.raises(ValidationError) as raised:
        Mixpanel("token", transport).group_set("company", group_id, {"plan": "pro"})

    assert transport.records() == []
    assert [p.field for p in raised.value.problems] == ["$group_id"]
