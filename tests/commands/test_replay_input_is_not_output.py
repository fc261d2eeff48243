"""`replay-dead-letters --file X --rejected-file X` and `send X --rejected-file X` are refused:
the input is read lazily while rejections are appended, so each would read its own rejections
back forever while the file grew."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from mixpanel_core.emulator import Emulator

from .conftest import read_lines, write_config, write_ndjson

RUN_TIMEOUT = 60.0
INVALID = {"event": "E", "properties": "not an object"}


def _dead_letter_file(path: Path) -> Path:
    lines = [
        orjson.dumps({"status": "invalid", "reason": "x", "record": INVALID}) for _ in range(3)
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # A subprocess with a timeout: without the guard the command never ends.
    return subprocess.run(
        [sys.executable, "-m", "mixpanel_core.cli", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _replay(
    config: Path, source: Path, rejected: str, *more: str
) -> subprocess.CompletedProcess[str]:
    return _cli(
        "replay-dead-letters",
        "--config",
        str(config),
        "--file",
        str(source),
        "--rejected-file",
        rejected,
        *more,
    )


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink"])
def test_replay_refuses_its_input_file_as_the_rejected_file(
    tmp_path: Path, mixpanel_emulator: Emulator, spelling: str
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = _dead_letter_file(tmp_path / "dead.jsonl")
    before = source.read_bytes()
    rejected = {
        "same": str(source),
        "relative": os.path.relpath(source),
        "symlink": str(tmp_path / "link.jsonl"),
    }[spelling]
    if spelling == "symlink":
        (tmp_path / "link.jsonl").symlink_to(source)

    result = _replay(config, source, rejected, "--batch-size", "2")

    assert result.returncode == 1, result.stderr
    assert "--rejected-file" in result.stderr
    assert "--file" in result.stderr
    assert source.read_bytes() == before
    assert mixpanel_emulator.client.records("import") == []

    # Another rejected file is fine: the three invalid letters land there, once each.
    elsewhere = tmp_path / "still-bad.jsonl"
    result = _replay(config, source, str(elsewhere))
    assert result.returncode == 0, result.stderr
    assert len(read_lines(elsewhere)) == 3


def test_replay_refuses_it_under_dry_run_too(tmp_path: Path, mixpanel_emulator: Emulator) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = _dead_letter_file(tmp_path / "dead.jsonl")

    result = _replay(config, source, str(source), "--dry-run")

    assert result.returncode == 1
    assert "--rejected-file" in result.stderr


def test_send_refuses_an_input_file_as_the_rejected_file(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    first = write_ndjson(tmp_path / "a.ndjson", [INVALID] * 3)
    second = write_ndjson(tmp_path / "b.ndjson", [INVALID] * 3)
    before = second.read_bytes()

    result = _cli(
        "send",
        str(first),
        str(second),
        "--config",
        str(config),
        "--rejected-file",
        str(second),
        "--batch-size",
        "2",
    )

    assert result.returncode == 1, result.stderr
    assert "--rejected-file" in result.stderr
    assert str(second) in result.stderr
    assert second.read_bytes() == before
