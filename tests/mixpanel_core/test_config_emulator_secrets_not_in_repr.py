"""``EmulatorConfig`` never shows the legacy API secret or the service account's secret in its
repr: a config is printed in logs and test failures, and the emulator's secrets may be a
deployment's own (``MIXPANEL_EMULATOR_API_SECRET``). Kills mutants dropping either field's
``repr=False``, which survived every test.
"""

from __future__ import annotations

import dataclasses

from mixpanel_core.emulator.config import EmulatorConfig

API_SECRET = "hunter2-api-secret"
ACCOUNT_SECRET = "hunter2-account-secret"


def test_the_secrets_are_not_shown() -> None:
    config = EmulatorConfig(api_secret=API_SECRET, service_account=("sa-user", ACCOUNT_SECRET))
    for shown in (repr(config), str(config)):
        assert API_SECRET not in shown
        assert ACCOUNT_SECRET not in shown


def test_the_secrets_are_kept() -> None:
    config = EmulatorConfig(api_secret=API_SECRET, service_account=("sa-user", ACCOUNT_SECRET))
    assert config.api_secret == API_SECRET
    assert dataclasses.replace(config).service_account == ("sa-user", ACCOUNT_SECRET)
