"""``replay-dead-letters`` prints its summary line once its file or topic is open; refused
before (here, a file that is not there) it prints only its one-line error, as ``send`` does.
It printed ``replayed 0 dead letters: 0 accepted, 0 still failing`` under every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import write_config


def test_a_replay_refused_before_reading_prints_only_its_error(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    missing = tmp_path / "not-there.jsonl"
    assert main(["replay-dead-letters", "--file", str(missing), "--config", str(config)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert "not-there.jsonl" in lines[0]
    assert "replayed" not in lines[0]


def test_a_replay_of_an_empty_file_prints_its_summary(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert main(["replay-dead-letters", "--file", str(empty), "--config", str(config)]) == 0
    assert "replayed 0 dead letters: 0 accepted, 0 still failing" in capsys.readouterr().err
