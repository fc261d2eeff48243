"""Every distinct_id Mixpanel refuses as a placeholder is refused before sending, spelled out
here rather than read from ``api_limits``: a value dropped from that list (which the emulator
shares) would otherwise pass the validator and the emulator alike, and be refused by Mixpanel
only, once the events sit in a dead-letter topic."""

from __future__ import annotations

import pytest

from mixpanel_core import Mixpanel, ValidationError
from mixpanel_core.testing import MemoryTransport

PLACEHOLDERS = [
    "anon",
    "anonymous",
    "nil",
    "null",
    "none",
    "n/a",
    "na",
    "true",
    "false",
    "undefined",
    "unknown",
    "0",
    "-1",
    "[]",
    "{}",
    "<nil>",
    "lmy47d",
    "00000000-0000-0000-0000-000000000000",
]


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_a_placeholder_is_refused_as_an_events_and_a_profiles_id(placeholder: str) -> None:
    transport = MemoryTransport()
    client = Mixpanel("token", transport)

    with pytest.raises(ValidationError) as tracked:
        client.track(placeholder.upper(), "E")
    with pytest.raises(ValidationError) as imported:
        client.import_data(None, placeholder, "E", 1_600_000_000)
    with pytest.raises(ValidationError) as profile:
        client.people_set(placeholder, {"plan": "pro"})

    assert transport.records() == []
    for raised in (tracked, imported, profile):
        [problem] = raised.value.problems
        assert "placeholder" in problem.rule
