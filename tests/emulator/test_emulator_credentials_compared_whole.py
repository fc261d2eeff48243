"""/import credentials are compared whole: one that only starts (or ends) like the real one is
refused with 401, whichever kind it claims to be."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
PROJECT = {"project_id": "12345"}


@pytest.mark.parametrize(
    "auth",
    [
        ("emulator-secret-and-more", ""),  # the project API secret, extended
        ("emulator-secre", ""),  # and cut short
        ("emulator-token-and-more", ""),  # the project token, extended
        ("emulator-toke", ""),
        ("sa-user", "sa-secret-and-more"),  # the service account's secret, extended
        ("sa-user", "sa-secre"),
        ("sa-user-and-more", "sa-secret"),  # its username, extended
    ],
)
def test_a_credential_that_only_shares_a_prefix_with_the_real_one_is_401(
    mixpanel_emulator: Emulator, make_event: MakeEvent, auth: tuple[str, str]
) -> None:
    # A prefix comparison passed every other test (they send the exact credential or an
    # unrelated one); Mixpanel refuses any credential that is not the real one.
    answer = requests.post(
        mixpanel_emulator.base_url + "/import", json=[make_event()], auth=auth, params=PROJECT
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == 401
    assert mixpanel_emulator.records() == []
