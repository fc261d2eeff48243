"""Reading input files: JSON arrays streamed element by element, NDJSON, one object, gzip."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.commands import sources
from mixpanel_core.commands.errors import InputError
from mixpanel_core.commands.sources import BadRecord, RecordFile

from .conftest import write_json, write_ndjson

RECORDS = [{"event": "e", "properties": {"n": n, "text": "x" * (n % 7)}} for n in range(50)]


def read(path: Path, skip: int = 0) -> list[object]:
    with RecordFile(path) as source:
        return list(source.records(skip))


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("indent", [False, True])
def test_json_array_is_read_element_by_element_across_read_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: bool, indent: bool
) -> None:
    # Tiny reads put window edges inside strings, numbers and objects.
    monkeypatch.setattr(sources, "READ_SIZE", 7)
    path = write_json(tmp_path / "a.json", RECORDS, compress=compress, indent=indent)
    assert read(path) == RECORDS
    assert read(path, skip=45) == RECORDS[45:]


def test_a_number_cut_by_the_window_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "READ_SIZE", 3)
    path = tmp_path / "n.json"
    path.write_text("[123456789, 5]")
    assert read(path) == [123456789, 5]


def test_ndjson_skips_blank_lines_and_reports_bad_lines_as_records(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(b'{"a": 1}\n\n   \nnot json\n{"a": 2}\n')
    records = read(path)
    assert records[0] == {"a": 1}
    assert isinstance(records[1], BadRecord)
    assert records[1].text == "not json"
    assert records[2] == {"a": 2}
    assert read(path, skip=2) == [{"a": 2}]


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "plain-name.txt", RECORDS[:3], compress=True)
    assert read(path) == RECORDS[:3]


def test_a_pretty_printed_object_is_one_record(tmp_path: Path) -> None:
    path = write_json(tmp_path / "one.json", RECORDS[1], indent=True)
    assert read(path) == [RECORDS[1]]
    assert read(path, skip=1) == []


def test_an_ndjson_name_keeps_a_broken_first_line_a_single_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"broken": \n{"a": 1}\n')
    records = read(path)
    assert isinstance(records[0], BadRecord)
    assert records[1:] == [{"a": 1}]


def test_a_truncated_array_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('[{"a": 1}, {"a": 2')
    with pytest.raises(InputError, match=r"cut\.json"):
        read(path)


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot be read"):
        RecordFile(tmp_path / "absent.json")
