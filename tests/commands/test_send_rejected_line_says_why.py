"""A record Mixpanel refuses is kept by ``send`` with Mixpanel's own reason and the field it
named: a rejected line saying only ``rejected`` leaves the user nothing to fix it by."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import read_lines, write_config, write_ndjson

pytestmark = pytest.mark.integration


def test_a_record_mixpanel_refuses_is_kept_with_mixpanels_reason_and_field(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    # No plugins: Mixpanel (the emulator) judges the record, and says why in its answer.
    config = write_config(tmp_path, mixpanel_emulator, plugins=[])
    record = {"event": "E", "properties": {"distinct_id": "u-1", "time": 1000, "$insert_id": "a1"}}
    source = write_ndjson(tmp_path / "in.ndjson", [record])
    rejected = tmp_path / "rejected.jsonl"

    code = main(["send", str(source), "--config", str(config), "--rejected-file", str(rejected)])

    assert code == 0
    [line] = read_lines(rejected)
    assert (line["stage"], line["status"], line["http_status"]) == ("delivery", "rejected", 400)
    assert line["field"] == "properties.time"
    assert "before 1971" in line["reason"], line["reason"]
