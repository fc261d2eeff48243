"""A rejected line of ``send`` written before lines said ``enriched`` is told by its ``stage``:
one refused as read (``validation``) never went through the enrichers, so its replay runs them
(redaction hashes the e-mail, drops the phone); a dead letter of a transport (``delivery``) is
the record as sent, and is not hashed again. Read the other way, an old rejected file replayed
would send a user's e-mail and phone to Mixpanel in clear."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .test_replay_enrichment import DIGEST, EMAIL, _config

pytestmark = pytest.mark.integration


def _old_line(stage: str, insert_id: str, **properties: object) -> bytes:
    """A rejected line as ``send`` wrote it before there was an ``enriched`` key."""
    record: dict[str, Any] = {
        "event": "Signed up",
        "properties": {
            "token": "emulator-token",
            "distinct_id": "u-1",
            "time": int(time.time()) - 3600,
            "$insert_id": insert_id,
            **properties,
        },
    }
    line = {"endpoint": "import", "status": "invalid", "reason": "fixed by hand"}
    return orjson.dumps({**line, "stage": stage, "record": record}) + b"\n"


def test_an_old_line_refused_as_read_is_redacted_and_one_sent_before_is_not(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = _config(tmp_path, mixpanel_emulator)
    old = tmp_path / "old-rejected.jsonl"
    old.write_bytes(
        _old_line("validation", "refused", email=EMAIL, phone="555-0100")
        + _old_line("delivery", "sent", email=DIGEST)
    )

    assert main(["replay-dead-letters", "--file", str(old), "--config", str(config)]) == 0

    stored = {
        r["properties"]["$insert_id"]: r["properties"]
        for r in mixpanel_emulator.client.records("import")
    }
    assert stored["refused"]["email"] == DIGEST
    assert "phone" not in stored["refused"]
    assert stored["sent"]["email"] == DIGEST, "hashed once, when it was first sent"
