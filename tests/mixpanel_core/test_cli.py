"""The command line: config check, plugins, errors as one line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mixpanel_core.cli import main


def test_config_check_accepts_a_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('[mixpanel]\ntoken = "t"\n[transports.out]\ntype = "console"\n')
    assert main(["config", "check", str(path)]) == 0
    said = capsys.readouterr()
    assert "ok (2 plugins: mixpanel_limits, router; 1 transports: out; 0 routes)" in said.out
    assert said.err == ""


def test_config_check_notes_a_file_a_client_refuses_for_want_of_a_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review N1: the check passed a file ``Mixpanel.from_config`` refuses (no token), without
    a word; the commands and the forwarder take it, so it is a note, not an error."""
    path = tmp_path / "no-token.toml"
    path.write_text('[transports.out]\ntype = "console"\n')
    assert main(["config", "check", str(path)]) == 0
    said = capsys.readouterr()
    assert ": ok (" in said.out
    assert said.err == (
        f"{path}: note: for an application using this file: mixpanel.token: required to build "
        "a client (Mixpanel.from_config refuses the file)\n"
    )


def test_config_check_names_the_bad_key_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[transports.out]\ntype = "console"\nstreem = "stdout"\n')
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "mixpanel-core: error: transports.out.streem: unknown key; the keys of "
        "[transports.out] are: stream, show_endpoint"
    )


def test_console_script_is_installed_and_shows_help() -> None:
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "mixpanel-core"), "--help"], capture_output=True, text=True, check=True
    )
    assert "plugins" in result.stdout
    assert "config" in result.stdout
