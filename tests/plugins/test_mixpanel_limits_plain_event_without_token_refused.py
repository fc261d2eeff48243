"""A plain tracked event, which the validator passes in one expression when it looks usual,
still needs its token: /track authenticates by the token in each record. A client built with
an empty token (an unset environment variable, say) must see its events refused, not sent to
be refused by Mixpanel. ``import_data`` needs none: /import authenticates the request."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import Mixpanel, ValidationError
from mixpanel_core.testing import MemoryTransport


@pytest.mark.parametrize("token", ["", None])
def test_a_tracked_event_without_a_token_is_refused(token: Any) -> None:
    transport = MemoryTransport()

    with pytest.raises(ValidationError) as raised:
        Mixpanel(token, transport).track("user-1", "Signed up", {"plan": "pro"})

    assert transport.records() == []
    assert [p.field for p in raised.value.problems] == ["properties.token"]


def test_an_event_token_emptied_by_its_properties_is_refused() -> None:
    transport = MemoryTransport()

    with pytest.raises(ValidationError):
        Mixpanel("token", transport).track("user-1", "Signed up", {"token": ""})

    assert transport.records() == []


def test_an_imported_event_needs_no_token() -> None:
    transport = MemoryTransport()

    Mixpanel("", transport).import_data(None, "user-1", "Signed up", 1_600_000_000)

    assert len(transport.records()) == 1
