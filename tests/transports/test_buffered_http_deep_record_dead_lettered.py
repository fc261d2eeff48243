"""A record the sender did not keep as a message is rebuilt from its JSON when it fails: one
nested more deeply than files are read (``wire.RECORD_DEPTH_LIMIT``) must still be rebuilt,
reported and dead-lettered, as it was sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.emulator import Emulator

from .test_buffered_http import make_event
from .test_buffered_http_holds_for_retry_after import dead_lettering

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
    # No report reader: the sender keeps no message, only the JSON.
    transport = dead_lettering(mixpanel_emulator, dead, retry_budget=0.0)
    mixpanel_emulator.client.fail_next(1, 503, endpoints=["track"])
    message = make_event("deep", 0, v=_nested(levels))

    transport.send(message)
    assert transport.flush(30) == []

    [line] = [orjson.loads(text) for text in dead.read_bytes().splitlines()]
    assert line["record"] == orjson.loads(message.json())
    assert line["status"] == "failed"
    transport.close(30)
