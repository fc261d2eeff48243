"""``python -m mixpanel_core`` is the ``mixpanel-core`` command: its output and its exit codes
(it failed with "No module named mixpanel_core.__main__", review R64)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mixpanel_core import __version__


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mixpanel_core", *arguments],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_runs_the_command_and_exits_with_its_code(tmp_path: Path) -> None:
    version = run("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"mixpanel-core {__version__}")
    listing = run("plugins")
    assert listing.returncode == 0
    assert "buffered_http" in listing.stdout
    missing = run("config", "check", str(tmp_path / "nowhere.toml"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("mixpanel-core: error: ")
