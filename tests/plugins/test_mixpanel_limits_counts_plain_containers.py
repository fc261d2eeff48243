"""Review R72 F3: ``mixpanel_limits`` counted and walked only frozen containers (``FrozenDict``,
tuples), so a list or dict inside a ``FrozenDict`` an enricher built by hand (which nothing
freezes) passed however long or deep it was, and Mixpanel refused it later, among the
transport's failures."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import Message, ValidationError, hookimpl
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.testing import memory_client


class HandBuilt:
    def __init__(self, value: object) -> None:
        self.value = value

    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Any:
        return message.with_property_values(  # type: ignore[attr-defined]
            FrozenDict({**message.properties, "extra": self.value})
        )


@pytest.mark.parametrize(
    ("value", "field", "rule"),
    [
        (["a"] * 300, "properties.extra", "has 300 elements; must be fewer than 255"),
        ({f"k{n}": n for n in range(300)}, "properties.extra", "has 300 keys"),
        ({"a": {"b": {"c": {"d": 1}}}}, "properties.extra.a.b.c", "nesting deeper than 3"),
        ([[["x", ["y"]]]], "properties.extra[0][0][1]", "nesting deeper than 3"),
    ],
    ids=["long-list", "wide-dict", "deep-dict", "deep-list"],
)
def test_plain_containers_in_a_hand_built_frozen_dict_are_held_to_the_limits(
    value: object, field: str, rule: str
) -> None:
    client, memory = memory_client(plugins=[("hand", HandBuilt(value))])

    with pytest.raises(ValidationError) as caught:
        client.track("user-1", "Ev")

    [problem] = caught.value.problems
    assert problem.field == field
    assert rule in problem.rule
    assert memory.messages == []
