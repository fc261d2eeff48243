"""A ``$merge`` names exactly two distinct_ids: the emulator (as Mixpanel) refuses one or three,
so the validator refuses them before sending rather than leave them to a dead-letter topic."""

from __future__ import annotations

import pytest

from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Merge
from plugins.mixpanel_limits import MixpanelLimits


def _fields(ids: list[str]) -> list[str]:
    record = {"event": "$merge", "properties": {"$distinct_ids": ids, "token": "tok"}}
    problems = MixpanelLimits().mixpanel_validate(Merge(freeze(record, ""))) or []
    return [problem.field for problem in problems]


@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_merge_of_other_than_two_ids_is_refused(count: int) -> None:
    assert _fields([f"user-{n}" for n in range(count)]) == ["properties.$distinct_ids"]


def test_a_merge_of_two_ids_passes() -> None:
    assert _fields(["user-1", "user-2"]) == []
