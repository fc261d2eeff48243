"""One record must be UNDER 1 MB of JSON: exactly 1,000,000 bytes is refused, one less is kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core import wire
from mixpanel_core.api_limits import MAX_RECORD_BYTES

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
PostImport = Callable[..., requests.Response]


def _event_of(size: int, make_event: MakeEvent) -> dict[str, Any]:
    """An event whose compact JSON (as the emulator measures it) is exactly ``size`` bytes."""
    event = make_event(blob="")
    event["properties"]["blob"] = "x" * (size - len(wire.dumps(event)))
    assert len(wire.dumps(event)) == size
    return event


def test_a_record_of_exactly_1_mb_is_refused_and_one_byte_less_is_imported(
    make_event: MakeEvent, post_import: PostImport
) -> None:
    # MIXPANEL_API.md: one record's uncompressed JSON must be under 1 MB. Measuring with ">"
    # instead of ">=" accepted a record of exactly 1 MB; no test sent one at the boundary.
    at_limit = _event_of(MAX_RECORD_BYTES, make_event)
    under = _event_of(MAX_RECORD_BYTES - 1, make_event)
    answer = post_import([at_limit, under])
    assert answer.status_code == 400, answer.text[:500]
    body = answer.json()
    assert body["num_records_imported"] == 1
    assert [entry["index"] for entry in body["failed_records"]] == [0]
    assert "1 MB" in body["failed_records"][0]["message"]
