"""A file named `*.ndjson` or `*.jsonl` (optionally `.gz`) is read as NDJSON even when its first
line starts with `[`: it was read as a JSON array, and the records after that line were lost to
"more data after the end of the JSON array" (docs/commands.md, *Input files*)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.commands.sources import BadRecord, RecordFile

from .conftest import write_ndjson

RECORDS = [{"event": "E", "properties": {"distinct_id": f"u{n}"}} for n in range(3)]


def _read(path: Path, skip: int = 0) -> list[object]:
    with RecordFile(path) as source:
        return list(source.records(skip))


@pytest.mark.parametrize("name", ["a.ndjson", "a.jsonl", "a.ndjson.gz", "a.jsonl.gz"])
@pytest.mark.parametrize("first", [["stray array line"], [{"event": "E"}, {"event": "F"}]])
def test_a_first_line_starting_with_a_bracket_is_one_record_of_an_ndjson_name(
    tmp_path: Path, name: str, first: list[object]
) -> None:
    path = write_ndjson(tmp_path / name, [first, *RECORDS], compress=name.endswith(".gz"))

    assert _read(path) == [first, *RECORDS]
    assert _read(path, skip=2) == RECORDS[1:]


def test_a_broken_bracket_line_is_one_bad_record_of_an_ndjson_name(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'["not closed\n{"n": 1}\n')

    first, second = _read(path)
    assert isinstance(first, BadRecord)
    assert second == {"n": 1}


def test_another_name_is_still_told_by_content(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('[{"n": 1},\n {"n": 2}]\n')

    assert _read(path) == [{"n": 1}, {"n": 2}]
