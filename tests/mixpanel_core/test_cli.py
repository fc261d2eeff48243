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
    assert (
        "ok (2 plugins: mixpanel_limits, router; 1 transports: out; 0 routes)"
        in capsys.readouterr().out
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
