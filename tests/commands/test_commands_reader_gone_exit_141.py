"""A command writing to a pipe whose reader went away (``plugins | head -1``) exits 141 without a
traceback; written to a file, the same command's whole output arrives and it exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = [["plugins"], ["config", "check", "CONFIG"]]


def _command(args: list[str], config: Path) -> list[str]:
    given = [str(config) if arg == "CONFIG" else arg for arg in args]
    return [sys.executable, "-m", "mixpanel_core.cli", *given]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mixpanel.toml"
    path.write_text('[mixpanel]\ntoken = "t"\n[transports.main]\ntype = "memory"\n')
    return path


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_reader_gone_ends_the_command_with_141_and_no_traceback(
    args: list[str], config: Path
) -> None:
    reader, writer = os.pipe()
    os.close(reader)
    try:
        finished = subprocess.run(
            _command(args, config),
            check=False,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(writer)

    assert finished.returncode == 141, finished.stderr
    assert finished.stderr == ""


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_reader_that_stays_gets_everything(args: list[str], config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        finished = subprocess.run(
            _command(args, config),
            check=False,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )

    assert finished.returncode == 0, finished.stderr
    text = out.read_text()
    assert text.endswith("\n")
    expected = "memory" if args[0] == "plugins" else "main"
    assert expected in text, text
