"""An ``/import`` record that buffered_http gives up on leaves its credential behind.

Refused credentials (401), a rejected record (400) and a server that keeps failing (500) all
end in the dead-letter file, a log line and a report. The API secret given with the call
(``import_data(..., api_secret=...)``), the configured one, and the service account's secret
are in none of them, nor in what ``close()`` returns, spelled as they are or as the Basic
header that carried them.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

SECRET = "S3CR3T-canary-dead-letter"
TOKEN = "emulator-token"

CREDENTIALS: dict[str, tuple[dict[str, Any], bool]] = {
    "per call": ({}, True),
    "configured api_secret": ({"api_secret": SECRET}, False),
    "service account": (
        {
            "service_account_username": "sa-user",
            "service_account_secret": SECRET,
            "project_id": "1",
        },
        False,
    ),
}


def _spellings() -> list[str]:
    """The secret as it is, and as each Basic header that could carry it."""
    return [
        SECRET,
        base64.b64encode(f"{SECRET}:".encode()).decode(),
        base64.b64encode(f"sa-user:{SECRET}".encode()).decode(),
    ]


@pytest.mark.parametrize("status", [401, 400, 500])
@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
def test_no_secret_in_dead_letters_logs_or_reports(
    mixpanel_emulator: Emulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    status: int,
    credential: str,
) -> None:
    settings, per_call = CREDENTIALS[credential]
    dead_letters = tmp_path / "dead.jsonl"
    config = config_from_mapping(
        {
            "mixpanel": {"api_host": mixpanel_emulator.base_url, "token": TOKEN, **settings},
            "routes": [{"transport": "direct"}],
            "transports": {
                "direct": {
                    "type": "buffered_http",
                    "dead_letter_path": str(dead_letters),
                    "linger": 0.01,
                    "backoff_base": 0.01,
                    "backoff_cap": 0.02,
                    "retry_budget": 0.5,
                }
            },
        }
    )
    mixpanel_emulator.fail_next(50, status, endpoints=["import"])
    caplog.set_level(logging.DEBUG)
    client = Mixpanel(TOKEN, config=config)
    shown: list[str] = [repr(config), repr(client)]
    try:
        when = int(time.time()) - 60
        client.import_data(TOKEN, "u-1", "Old", when, api_secret=SECRET if per_call else None)
    finally:
        shown.append(repr(client.close(10)))

    lines = [json.loads(line) for line in dead_letters.read_text().splitlines() if line]
    assert [line["endpoint"] for line in lines] == ["import"]  # the path was taken
    shown += [dead_letters.read_text(), caplog.text]
    shown += [repr(record.__dict__) for record in caplog.records]
    everything = "\n".join(shown)
    for spelling in _spellings():
        assert spelling not in everything
