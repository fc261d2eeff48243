"""The ``$insert_id`` that ``send`` derives for an event comes from the file's content and the
record's position, not its name. Two exports of the same name from two directories are two
files: ids from the name would give the second one's records the first one's ids, and Mixpanel
would drop each that shares its event, user and time with the first one's as a duplicate, with
every report saying accepted. And a file renamed between two runs keeps its ids (docs/commands.md),
so its records are counted once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration


def test_files_of_one_name_in_two_directories_both_arrive_whole(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    (tmp_path / "monday").mkdir()
    (tmp_path / "tuesday").mkdir()
    # Two shops' exports: the same users and event at the same times, in other shops.
    shop_a = events(20, shop="a")
    shop_b = [{**e, "properties": {**e["properties"], "shop": "b"}} for e in shop_a]
    monday = write_ndjson(tmp_path / "monday" / "export.ndjson", shop_a)
    tuesday = write_ndjson(tmp_path / "tuesday" / "export.ndjson", shop_b)

    assert main(["send", str(monday), str(tuesday), "--config", str(config)]) == 0

    client = mixpanel_emulator.client
    assert client.stats()["unique_events"] == 40
    assert len(set(client.insert_ids("import"))) == 40


def test_a_file_renamed_between_two_runs_keeps_its_derived_ids(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    first = write_ndjson(tmp_path / "export.ndjson", events(20))
    assert main(["send", str(first), "--config", str(config)]) == 0
    renamed = first.rename(tmp_path / "export-2026-11-29.ndjson")

    assert main(["send", str(renamed), "--config", str(config)]) == 0

    ids = mixpanel_emulator.client.insert_ids("import")
    assert len(ids) == 40
    assert ids[20:] == ids[:20]
    assert mixpanel_emulator.client.stats()["unique_events"] == 20
