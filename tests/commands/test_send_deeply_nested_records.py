"""A record nested hundreds of levels deep is refused as it is read, with its text kept, as a
line that is not JSON is: it can never be delivered (Mixpanel takes properties nested 3 levels
deep at most), and it could not be written back to the rejected file either."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, read_lines, write_config

pytestmark = pytest.mark.integration


def _deep_event(levels: int) -> bytes:
    nested = b"[" * levels + b"]" * levels
    return b'{"event": "deep", "properties": {"distinct_id": "u", "v": ' + nested + b"}}"


def _lines(records: list[bytes]) -> bytes:
    return b"".join(record + b"\n" for record in records)


def _good(count: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps(record) for record in events(count, start)]


@pytest.mark.parametrize(
    ("name", "levels"),
    [("in.ndjson", 101), ("in.ndjson", 1000), ("in.json", 101), ("in.json", 600)],
)
def test_a_record_nested_too_deeply_is_kept_in_the_rejected_file_and_the_rest_sent(
    tmp_path: Path, mixpanel_emulator: Emulator, name: str, levels: int
) -> None:
    # At 1,000 levels (within orjson's 1,024) an NDJSON record was refused at validation,
    # could not be written to the rejected file, and the run stopped there, its summary naming
    # a rejected file that stayed empty.
    records = [*_good(2), _deep_event(levels), *_good(2, 2)]
    source = tmp_path / name
    array = b"[" + b",\n".join(records) + b"]"
    source.write_bytes(_lines(records) if name.endswith(".ndjson") else array)
    rejected = tmp_path / "rejected.jsonl"
    config = write_config(tmp_path, mixpanel_emulator)

    code = main(["send", str(source), "--config", str(config), "--rejected-file", str(rejected)])

    assert code == 0
    assert len(mixpanel_emulator.records("import")) == 4
    [line] = read_lines(rejected)
    assert (line["stage"], line["status"], line["index"]) == ("read", "invalid", 2)
    assert "nested more than 100 levels deep" in line["reason"]
    assert line["record"].startswith('{"event": "deep"')


def test_an_array_element_too_deep_to_parse_stops_the_run_with_a_line_not_a_traceback(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Where the element ends cannot be told without parsing it: the run stops, saying why,
    # with nothing past the records before it marked done.
    source = tmp_path / "in.json"
    source.write_bytes(b"[" + b",".join([*_good(2), _deep_event(5000), *_good(2, 2)]) + b"]")
    config = write_config(tmp_path, mixpanel_emulator)

    code = main(["send", str(source), "--config", str(config)])

    assert code == 1
    err = capsys.readouterr().err
    assert "an element of the JSON array is nested too deeply to read" in err
    assert str(source) in err
    assert "Traceback" not in err


def test_a_single_object_file_nested_too_deeply_is_one_invalid_record_not_an_error(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    # Valid JSON: it was refused as "not JSON", with exit 1.
    source = tmp_path / "one.json"
    source.write_bytes(b"{\n" + _deep_event(150)[1:-1] + b"\n}\n")
    rejected = tmp_path / "rejected.jsonl"
    config = write_config(tmp_path, mixpanel_emulator)

    code = main(["send", str(source), "--config", str(config), "--rejected-file", str(rejected)])

    assert code == 0
    [line] = read_lines(rejected)
    assert line["stage"] == "read"
    assert "nested more than 100 levels deep" in line["reason"]


def test_a_dead_letter_whose_record_is_within_the_limit_is_replayed_though_its_line_is_not(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    # The line holds its record one level down: a record of 100 levels is a line of 101,
    # which was refused whole as "not a dead-letter line".
    record = orjson.loads(_deep_event(98))  # 100 levels with the record and its properties
    lines = tmp_path / "dead.jsonl"
    lines.write_bytes(orjson.dumps({"endpoint": "import", "record": record}) + b"\n")
    rejected = tmp_path / "rejected.jsonl"
    config = write_config(tmp_path, mixpanel_emulator)

    replay = ["replay-dead-letters", "--file", str(lines), "--config", str(config)]
    code = main([*replay, "--rejected-file", str(rejected)])

    assert code == 0
    [line] = read_lines(rejected)
    # Judged as a record (too deep for Mixpanel), and kept whole.
    assert line["stage"] == "validation", line["reason"]
    assert line["record"]["properties"]["v"] == record["properties"]["v"]
