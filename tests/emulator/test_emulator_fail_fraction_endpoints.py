"""``fail_fraction`` with ``endpoints`` fails requests to those endpoints only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]


def test_fail_fraction_limited_to_import_leaves_track_and_engage_served(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    # p=1: every matching request fails, so the outcome is certain. With the endpoints
    # ignored, /track and /engage failed too and no test noticed.
    mixpanel_emulator.fail_fraction(1.0, statuses=[503], endpoints=["import"])
    base = mixpanel_emulator.base_url
    update = {"$token": "emulator-token", "$distinct_id": "u1", "$set": {"plan": "pro"}}
    assert requests.post(base + "/track", json=make_event()).status_code == 200
    assert requests.post(base + "/engage", json=update).status_code == 200
    imported = requests.post(
        base + "/import",
        json=[make_event()],
        params={"project_id": "12345"},
        auth=("sa-user", "sa-secret"),
    )
    assert imported.status_code == 503
    stats = mixpanel_emulator.stats()
    assert stats["requests"] == {"track": {"200": 1}, "engage": {"200": 1}, "import": {"503": 1}}
