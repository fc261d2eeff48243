"""A rejected record's `index` when two records of a chunk share an `$insert_id`: each report is
traced to its own record, in order (``SentMessages``, the mechanism replay uses), where a map
of `$insert_id` to index named the last record with the id for both."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import read_lines, write_config, write_ndjson

pytestmark = pytest.mark.integration


def _event(who: str, insert_id: str, *, bad: bool = False) -> dict[str, object]:
    when = 1000 if bad else time.time() - 3600  # 1000: before 1971, rejected by /import
    return {"event": "E", "properties": {"distinct_id": who, "time": when, "$insert_id": insert_id}}


@pytest.mark.parametrize("transport", ["buffered_http", "http"])
def test_each_rejection_names_its_own_record_when_records_share_an_insert_id(
    tmp_path: Path, mixpanel_emulator: Emulator, transport: str
) -> None:
    # No plugins: Mixpanel (the emulator) judges, so the rejections come back as reports.
    config = write_config(tmp_path, mixpanel_emulator, transport=transport, plugins=[])
    records = [
        _event("a", "same-1", bad=True),
        _event("b", "same-1"),
        _event("c", "same-2"),
        _event("d", "same-2", bad=True),
        _event("e", "same-3", bad=True),
        _event("f", "same-3", bad=True),
    ]
    source = write_ndjson(tmp_path / "dupid.ndjson", records)
    rejected = tmp_path / "rejected.jsonl"

    code = main(["send", str(source), "--config", str(config), "--rejected-file", str(rejected)])

    assert code == 0
    lines = read_lines(rejected)
    assert [line["index"] for line in lines] == [0, 3, 4, 5]
    assert [line["record"]["properties"]["distinct_id"] for line in lines] == ["a", "d", "e", "f"]
