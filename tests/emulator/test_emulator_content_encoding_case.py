"""``Content-Encoding`` names a coding case-insensitively (RFC 9110 section 8.4.1): ``GZIP`` is
gzip, as any HTTP server reads it."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]


@pytest.mark.parametrize("coding", ["GZIP", "Gzip"])
def test_a_gzip_body_named_in_capitals_is_inflated(
    mixpanel_emulator: Emulator, make_event: MakeEvent, coding: str
) -> None:
    # Compared case-sensitively, the body was read as JSON text, refused with 400, and a
    # client sending such a header would fail here though a real server accepts it.
    events = [make_event(), make_event()]
    answer = requests.post(
        mixpanel_emulator.base_url + "/track",
        data=gzip.compress(orjson.dumps(events)),
        headers={"Content-Type": "application/json", "Content-Encoding": coding},
    )
    assert (answer.status_code, answer.text) == (200, "1")
    assert mixpanel_emulator.records("track") == events
