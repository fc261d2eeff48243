"""A boolean is no number to Mixpanel (JSON writes ``true``), though Python counts ``True``
among the integers: ``$add`` takes numbers only (docs/plugins.md), and a ``time`` of ``True``
is refused as not a number, not as a time of 1970."""

from __future__ import annotations

import pytest

from mixpanel_core import Mixpanel, ValidationError
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event, ImportEvent
from mixpanel_core.testing import MemoryTransport
from plugins.mixpanel_limits import MixpanelLimits


def test_increment_by_numbers_is_sent_and_by_a_boolean_refused() -> None:
    transport = MemoryTransport()
    client = Mixpanel("token", transport)

    client.people_increment("user-1", {"logins": 1, "balance": -2.5})
    with pytest.raises(ValidationError) as raised:
        client.people_increment("user-1", {"logins": True})

    [record] = transport.records()
    assert record["$add"] == {"logins": 1, "balance": -2.5}
    assert [(p.field, p.rule) for p in raised.value.problems] == [
        ("$add.logins", "must be a number")
    ]


@pytest.mark.parametrize("kind", [Event, ImportEvent])
def test_a_boolean_time_is_refused_as_not_a_number(kind: type[Event]) -> None:
    record = {
        "event": "E",
        "properties": {"token": "t", "distinct_id": "u-1", "time": True, "$insert_id": "i1"},
    }

    [problem] = MixpanelLimits().mixpanel_validate(kind(freeze(record, ""))) or []

    assert problem.field == "properties.time"
    assert problem.rule.startswith("must be a number")
