"""The pytest fixtures shipped through the pytest11 entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration


def test_mixpanel_emulator_fixture_yields_a_running_emulator(mixpanel_emulator: Emulator) -> None:
    assert requests.get(mixpanel_emulator.base_url + "/_emulator/health").ok
    assert mixpanel_emulator.records() == []


INNER_TESTS = """
import requests

EVENT = {"event": "e", "properties": {"token": "emulator-token"}}
seen = []


def test_first(mixpanel_emulator_session):
    mixpanel_emulator_session.reset()
    seen.append(mixpanel_emulator_session.base_url)
    requests.post(mixpanel_emulator_session.base_url + "/track", json=EVENT)


def test_second_sees_the_same_emulator_and_what_the_first_left(mixpanel_emulator_session):
    assert seen == [mixpanel_emulator_session.base_url]
    assert mixpanel_emulator_session.records() == [EVENT]
    mixpanel_emulator_session.reset()
    assert mixpanel_emulator_session.records() == []
"""


def test_mixpanel_emulator_session_fixture_is_shared_and_reset_by_the_caller(
    tmp_path: Path,
) -> None:
    # Two tests of a project that installs mixpanel-core (the fixtures come through the
    # pytest11 entry point): the second gets the first's emulator, records and all.
    (tmp_path / "test_shared.py").write_text(INNER_TESTS)
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_shared.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "2 passed" in finished.stdout
