"""An event of a dead-letter file without ``$insert_id`` gets one derived from the file's content
and the line's place, not from the file's path. A dead-letter file is rotated: the next one has
the same path and other records, and ids from the path would give them the last one's ids:
Mixpanel would drop each that shares its event, user and time with one of those as a duplicate,
with every report saying accepted. A file moved aside before its replay (as the docs ask) keeps
its ids, so replaying it again counts its events once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration


WEEK = events(5)


def _dead_letters(path: Path, **properties: object) -> Path:
    """Five dead letters: the same events (users, times) each call, with ``properties``."""
    records = [{**e, "properties": {**e["properties"], **properties}} for e in WEEK]
    return write_ndjson(path, [{"endpoint": "import", "record": r} for r in records])


def test_a_rotated_dead_letter_file_at_the_same_path_arrives_whole(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    path = tmp_path / "dead-letters.jsonl"
    arguments = ["replay-dead-letters", "--config", str(config), "--file", str(path)]

    _dead_letters(path, week=1)
    assert main(arguments) == 0
    _dead_letters(path, week=2)  # rotated: other records of the same users and times
    assert main(arguments) == 0

    assert mixpanel_emulator.client.stats()["unique_events"] == 10


def test_a_dead_letter_file_moved_between_two_replays_keeps_its_derived_ids(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    first = _dead_letters(tmp_path / "dead-letters.jsonl")
    assert main(["replay-dead-letters", "--config", str(config), "--file", str(first)]) == 0
    moved = first.rename(tmp_path / "replayed-once.jsonl")

    assert main(["replay-dead-letters", "--config", str(config), "--file", str(moved)]) == 0

    ids = mixpanel_emulator.client.insert_ids("import")
    assert len(ids) == 10
    assert ids[5:] == ids[:5]
    assert mixpanel_emulator.client.stats()["unique_events"] == 5
