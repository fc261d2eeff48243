"""The pytest fixtures shipped through the pytest11 entry point."""

from __future__ import annotations

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration


def test_mixpanel_emulator_fixture_yields_a_running_emulator(mixpanel_emulator: Emulator) -> None:
    assert requests.get(mixpanel_emulator.base_url + "/_emulator/health").ok
    assert mixpanel_emulator.records() == []


def test_mixpanel_emulator_session_fixture_is_shared_and_reset_by_the_caller(
    mixpanel_emulator_session: Emulator,
) -> None:
    mixpanel_emulator_session.reset()
    event = {"event": "e", "properties": {"token": "emulator-token"}}
    requests.post(mixpanel_emulator_session.base_url + "/track", json=event)
    assert mixpanel_emulator_session.records() == [event]
    mixpanel_emulator_session.reset()
