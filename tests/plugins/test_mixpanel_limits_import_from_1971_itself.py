"""``/import`` refuses events before 1971-01-01 and takes one at that instant (the emulator
compares ``earliest <= time``): the validator must not refuse the first second /import takes,
in seconds or in milliseconds."""

from __future__ import annotations

import pytest

from mixpanel_core.api_limits import EARLIEST_IMPORT_TIME
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import ImportEvent
from plugins.mixpanel_limits import MixpanelLimits


def _fields(event_time: int) -> list[str]:
    record = {
        "event": "E",
        "properties": {"distinct_id": "user-1", "time": event_time, "$insert_id": "id1"},
    }
    problems = MixpanelLimits().mixpanel_validate(ImportEvent(freeze(record, ""))) or []
    return [problem.field for problem in problems]


@pytest.mark.parametrize("unit", [pytest.param(1, id="seconds"), pytest.param(1000, id="ms")])
def test_the_first_instant_of_1971_is_imported_and_the_one_before_refused(unit: int) -> None:
    assert EARLIEST_IMPORT_TIME == 365 * 86400  # 1971-01-01T00:00:00Z

    assert _fields(EARLIEST_IMPORT_TIME * unit) == []
    assert _fields(EARLIEST_IMPORT_TIME * unit - 1) == ["properties.time"]
