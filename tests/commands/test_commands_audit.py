"""Audit of `send` and `replay-dead-letters`: nothing lost silently, and bad input gets a clear
one-line error before anything is half-done."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, read_lines, write_config, write_ndjson

pytestmark = pytest.mark.integration

BOM = b"\xef\xbb\xbf"


def _checkpoint_entries(path: Path) -> list[dict[str, object]]:
    return list(orjson.loads(path.read_bytes())["files"].values())


def test_a_rerun_with_a_rejected_file_keeps_what_the_first_run_could_not_keep(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    # The error of the first run says "give --rejected-file"; the rerun that does so must meet
    # the invalid record again instead of resuming past it.
    config = write_config(tmp_path, mixpanel_emulator)
    records: list[object] = [*events(6)]
    records[3] = {"neither": "shape"}
    source = write_ndjson(tmp_path / "events.ndjson", records)
    checkpoint = tmp_path / "send.checkpoint"
    rejected = tmp_path / "rejected.jsonl"
    arguments = ["send", str(source), "--config", str(config), "--checkpoint", str(checkpoint)]

    assert main([*arguments, "--batch-size", "2"]) == 1
    assert [e["confirmed"] for e in _checkpoint_entries(checkpoint)] == [2]

    assert main([*arguments, "--batch-size", "2", "--rejected-file", str(rejected)]) == 0

    (line,) = read_lines(rejected)
    assert (line["index"], line["record"]) == (3, {"neither": "shape"})
    assert mixpanel_emulator.client.stats()["unique_events"] == 5
    assert [e["complete"] for e in _checkpoint_entries(checkpoint)] == [True]


def test_a_second_json_array_in_the_file_is_an_error_not_the_end_of_the_file(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = tmp_path / "both.json"  # `cat a.json b.json > both.json`
    source.write_bytes(orjson.dumps(events(2)) + b"\n" + orjson.dumps(events(3, start=2)) + b"\n")

    assert main(["send", str(source), "--config", str(config)]) == 1

    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"mixpanel-core: error: {source}: more data after the end")

    # Blank lines after the one array are no second array.
    one = tmp_path / "one.json"
    one.write_bytes(orjson.dumps(events(3, start=5)) + b"\r\n\n  \n")
    assert main(["send", str(one), "--config", str(config)]) == 0
    arrived = {r["properties"]["n"] for r in mixpanel_emulator.client.records("import")}
    assert {5, 6, 7} <= arrived


@pytest.mark.parametrize("shape", ["ndjson", "array", "object"])
def test_a_byte_order_mark_and_crlf_line_ends_do_not_make_a_record_invalid(
    tmp_path: Path, mixpanel_emulator: Emulator, shape: str
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    records = events(3)
    if shape == "ndjson":
        data = b"".join(orjson.dumps(r) + b"\r\n" for r in records)
    else:
        document = records if shape == "array" else records[0]
        data = orjson.dumps(document, option=orjson.OPT_INDENT_2).replace(b"\n", b"\r\n")
    source = tmp_path / "windows.json"
    source.write_bytes(BOM + data)

    assert main(["send", str(source), "--config", str(config)]) == 0
    expected = 3 if shape != "object" else 1
    assert mixpanel_emulator.client.stats()["unique_events"] == expected


def test_replay_reads_a_dead_letter_file_saved_with_a_byte_order_mark(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    lines = [orjson.dumps({"endpoint": "import", "record": r}) for r in events(3)]
    source = tmp_path / "dead.jsonl"
    source.write_bytes(BOM + b"\r\n".join(lines) + b"\r\n")

    assert main(["replay-dead-letters", "--file", str(source), "--config", str(config)]) == 0
    assert mixpanel_emulator.client.stats()["unique_events"] == 3


def test_a_rejected_file_that_cannot_be_written_is_a_one_line_error(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", [*events(3), {"neither": "shape"}])
    checkpoint = tmp_path / "send.checkpoint"

    arguments = ["send", str(source), "--config", str(config), "--checkpoint", str(checkpoint)]
    # Every write to /dev/full fails: no space left on device.
    code = main([*arguments, "--rejected-file", "/dev/full"])

    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("mixpanel-core: error: /dev/full: cannot write rejected records")
    assert not checkpoint.exists()  # the invalid record was not kept: not confirmed either


@pytest.mark.parametrize("clash", ["rejected-file", "input"])
def test_a_checkpoint_path_that_is_the_rejected_file_or_an_input_is_refused(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str], clash: str
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", [*events(3), {"neither": "shape"}])
    before = source.read_bytes()
    rejected = tmp_path / "out.jsonl"
    checkpoint = rejected if clash == "rejected-file" else source

    arguments = ["send", str(source), "--config", str(config), "--checkpoint", str(checkpoint)]
    code = main([*arguments, "--rejected-file", str(rejected)])

    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"mixpanel-core: error: --checkpoint {checkpoint} is ")
    assert "delete" not in error
    assert source.read_bytes() == before
    assert mixpanel_emulator.client.records("import") == []


def _with_stdin(data: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mixpanel_core.cli", *args],
        input=data.decode(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", ["send", "replay-dead-letters"])
def test_a_pipe_as_input_is_refused_before_anything_is_read(
    tmp_path: Path, mixpanel_emulator: Emulator, command: str
) -> None:
    # More than the MiB the file identity samples: before, that sample swallowed the first
    # MiB of the pipe, and replay went on with the rest as if it were the whole file.
    config = write_config(tmp_path, mixpanel_emulator)
    records = events(20_000)
    if command == "send":
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        args = ["send", "/dev/stdin"]
    else:
        data = b"".join(orjson.dumps({"endpoint": "import", "record": r}) + b"\n" for r in records)
        args = ["replay-dead-letters", "--file", "/dev/stdin"]
    assert len(data) > 1 << 20
    rejected = tmp_path / "rejected.jsonl"

    result = _with_stdin(data, *args, "--config", str(config), "--rejected-file", str(rejected))

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("mixpanel-core: error: /dev/stdin: not a regular file")
    assert mixpanel_emulator.client.records("import") == []

    # A file redirected to stdin is a regular file: it can be read twice, and is.
    saved = tmp_path / "saved.jsonl"
    saved.write_bytes(data)
    with saved.open("rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-m", "mixpanel_core.cli", *args, "--config", str(config)],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert mixpanel_emulator.client.stats()["unique_events"] == len(records)
