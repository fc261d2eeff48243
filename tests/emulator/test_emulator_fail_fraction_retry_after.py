"""``fail_fraction`` with ``retry_after`` sends the Retry-After header with each failure it
injects, as ``fail_next`` does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]


def test_fail_fraction_sends_its_retry_after(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    # Dropping the fraction's retry_after passed every test: only fail_next's was checked,
    # and a client honouring Retry-After (MIXPANEL_API.md) went untested under random 429s.
    mixpanel_emulator.fail_fraction(1.0, statuses=[429], retry_after=3)
    answer = requests.post(mixpanel_emulator.base_url + "/track", json=make_event())
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    mixpanel_emulator.fail_fraction(1.0, statuses=[503])
    answer = requests.post(mixpanel_emulator.base_url + "/track", json=make_event())
    assert answer.status_code == 503
    assert "Retry-After" not in answer.headers
