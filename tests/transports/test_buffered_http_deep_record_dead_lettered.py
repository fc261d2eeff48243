"""A record the sender did not keep as a message is rebuilt from its JSON when it fails: one
nested more deeply than files are read (``wire.RECORD_DEPTH_LIMIT``) must still be rebuilt,
reported and dead-lettered, as it was sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.emulator import Emulator
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

from .test_buffered_http import _FAST, make_event

pytestmark = pytest.mark.integration


def _nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [150, 250])
def test_a_deeply_nested_record_that_fails_is_dead_lettered_whole(
    mixpanel_emulator: Emulator, tmp_path: Path, levels: int
) -> None:
    dead = tmp_path / "dead.jsonl"
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    options = BufferedHttpOptions(  # type: ignore[arg-type]
        **{**_FAST, "retry_budget": 0.0, "dead_letter_path": str(dead)}
    )
    transport = BufferedHttpTransport(settings, options)  # no report reader: nothing kept
    mixpanel_emulator.client.fail_next(1, 503, endpoints=["track"])
    message = make_event("deep", 0, v=_nested(levels))

    transport.send(message)
    assert transport.flush(30) == []

    [line] = [orjson.loads(text) for text in dead.read_bytes().splitlines()]
    assert line["record"] == orjson.loads(message.json())
    assert line["status"] == "failed"
    transport.close(30)
