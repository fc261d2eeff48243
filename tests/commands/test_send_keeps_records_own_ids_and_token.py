"""``send`` fills in only what a record lacks: a record's own ``$insert_id`` is the one Mixpanel
deduplicates it by (replaced by a derived one, a record sent before by other code would be
stored twice), and its own token is the one sent, the configured one only where it has none."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.commands.records import build_message
from mixpanel_core.emulator import Emulator
from mixpanel_core.insert_id import derived_insert_id

from .conftest import write_config, write_ndjson


@pytest.mark.integration
def test_a_records_own_insert_id_reaches_mixpanel_and_one_without_gets_a_derived_one(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits"])
    now = time.time() - 3600
    records = [
        {"event": "E", "properties": {"distinct_id": "u-1", "time": now, "$insert_id": "own-1"}},
        {"event": "E", "properties": {"distinct_id": "u-2", "time": now}},
    ]
    source = write_ndjson(tmp_path / "in.ndjson", records)

    assert main(["send", str(source), "--config", str(config)]) == 0

    ids = mixpanel_emulator.insert_ids("import")
    assert ids[0] == "own-1"
    assert ids[1] not in ("own-1", ""), "the record without one gets an id of its own"
    assert len(ids) == 2


def test_a_records_own_token_is_kept_and_the_configured_one_fills_in_a_missing_one() -> None:
    key = ("file-identity", 0)
    own = build_message(
        {"event": "E", "properties": {"distinct_id": "u", "token": "theirs"}}, None, key, "ours"
    )
    missing = build_message({"event": "E", "properties": {"distinct_id": "u"}}, None, key, "ours")
    profile = build_message(
        {"$distinct_id": "u", "$token": "theirs", "$set": {"a": 1}}, None, key, "ours"
    )

    assert own.record["properties"]["token"] == "theirs"
    assert missing.record["properties"]["token"] == "ours"
    assert profile.record["$token"] == "theirs"


def test_a_records_own_insert_id_is_kept_by_the_message_built_for_it() -> None:
    key = ("file-identity", 7)
    own = build_message({"event": "E", "properties": {"$insert_id": "own-1"}}, None, key)
    derived = build_message({"event": "E", "properties": {}}, None, key)

    assert own.record["properties"]["$insert_id"] == "own-1"
    assert derived.record["properties"]["$insert_id"] == derived_insert_id(*key)
