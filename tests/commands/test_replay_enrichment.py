"""``replay-dead-letters`` does not run the pipeline's enrichers again on a record that went
through them when it was first sent (docs/commands.md): with ``redaction`` enabled, a replayed
dead letter reached Mixpanel with the hash of its hash, and no longer matched that user's other
events on the property. A record ``send`` refused as read is still enriched (redacted) when
its rejected line is replayed."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import read_lines, write_config, write_ndjson

pytestmark = pytest.mark.integration

REDACTION = """
[plugins.redaction]
hash = ["email"]
drop = ["phone"]
salt = "pepper"
"""
DROP_AND_SUPER_PROPERTIES = """
[pipeline]
on_invalid = "drop"
[plugins.super_properties]
properties = { app = "checkout" }
"""
EMAIL = "ada@example.com"
DIGEST = hmac.new(b"pepper", EMAIL.encode(), hashlib.sha256).hexdigest()


def _config(tmp_path: Path, emulator: Emulator) -> Path:
    return write_config(
        tmp_path, emulator, plugins=["mixpanel_limits", "redaction"], extra=REDACTION
    )


def _event(insert_id: str, **properties: object) -> dict[str, Any]:
    return {
        "event": "Signed up",
        "properties": {
            "token": "emulator-token",
            "distinct_id": "u-1",
            "time": int(time.time()) - 3600,
            "$insert_id": insert_id,
            **properties,
        },
    }


def _refused_then_fixed(
    tmp_path: Path, config: Path, record: dict[str, Any]
) -> tuple[dict[str, Any], Path]:
    """``record``, two hours in the future, refused by ``send`` as read: its rejected line,
    and a file holding that line corrected by hand (the time an hour ago) to replay."""
    record["properties"]["time"] = int(time.time()) + 7200
    source = write_ndjson(tmp_path / "in.ndjson", [record])
    rejected = tmp_path / "rejected.jsonl"
    sent = main(["send", str(source), "--config", str(config), "--rejected-file", str(rejected)])
    assert sent == 0
    [line] = read_lines(rejected)
    properties = {**line["record"]["properties"], "time": int(time.time()) - 3600}
    corrected = {**line, "record": {**line["record"], "properties": properties}}
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_bytes(orjson.dumps(corrected) + b"\n")
    return line, fixed


def test_a_dead_letter_is_replayed_as_it_was_sent(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    """A line of buffered_http's dead-letter file: its email is the digest already."""
    dead = tmp_path / "dead-letters.jsonl"
    line = {"endpoint": "import", "status": "failed", "record": _event("dl-1", email=DIGEST)}
    dead.write_bytes(orjson.dumps(line) + b"\n")

    code = main(
        [
            "replay-dead-letters",
            "--file",
            str(dead),
            "--config",
            str(_config(tmp_path, mixpanel_emulator)),
        ]
    )

    assert code == 0
    [stored] = mixpanel_emulator.records("import")
    assert stored["properties"]["email"] == DIGEST, "hashed once, when it was first sent"


def test_a_line_send_refused_as_read_is_redacted_when_replayed(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    """``send`` refuses a record as read (a time in the future) and keeps it as read, with
    ``"enriched": false``; corrected and replayed, it is redacted then."""
    config = _config(tmp_path, mixpanel_emulator)
    record = _event("rf-1", email=EMAIL, phone="555-0199")
    line, fixed = _refused_then_fixed(tmp_path, config, record)
    assert (line["stage"], line["enriched"]) == ("validation", False)
    assert main(["replay-dead-letters", "--file", str(fixed), "--config", str(config)]) == 0

    [stored] = mixpanel_emulator.records("import")
    assert stored["properties"]["email"] == DIGEST
    assert "phone" not in stored["properties"]


def test_a_line_delivery_rejected_is_kept_as_sent_and_marked_so(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    """A record Mixpanel rejected is kept as sent (redacted), ``"enriched": true``: replayed,
    it is not hashed again."""
    config = _config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "in.ndjson", [_event("mx-1", email=EMAIL)])
    rejected = tmp_path / "rejected.jsonl"
    mixpanel_emulator.client.fail_fraction(1.0, statuses=(400,))
    assert (
        main(["send", str(source), "--config", str(config), "--rejected-file", str(rejected)]) == 0
    )
    [line] = read_lines(rejected)
    assert (line["stage"], line["enriched"]) == ("delivery", True)
    assert line["record"]["properties"]["email"] == DIGEST

    mixpanel_emulator.client.fail_fraction(0.0)
    again = tmp_path / "again.jsonl"
    again.write_bytes(orjson.dumps(line) + b"\n")
    assert main(["replay-dead-letters", "--file", str(again), "--config", str(config)]) == 0
    [stored] = mixpanel_emulator.records("import")
    assert stored["properties"]["email"] == DIGEST


def test_under_on_invalid_drop_a_record_refused_as_read_is_kept_as_read(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    """``on_invalid = "drop"`` is for applications: the commands keep invalid records
    themselves, as read. Under it, ``send`` wrote one refused before enrichment as enriched
    (from its dropped report), and its replay then went without its super properties."""
    config = write_config(
        tmp_path,
        mixpanel_emulator,
        plugins=["mixpanel_limits", "super_properties"],
        extra=DROP_AND_SUPER_PROPERTIES,
    )
    line, fixed = _refused_then_fixed(tmp_path, config, _event("dr-1"))
    assert (line["stage"], line["enriched"]) == ("validation", False)
    assert "app" not in line["record"]["properties"], "as read"
    assert main(["replay-dead-letters", "--file", str(fixed), "--config", str(config)]) == 0
    [stored] = mixpanel_emulator.records("import")
    assert stored["properties"]["app"] == "checkout"
