"""With no reader of reports and no dead-letter file, a record not delivered is still logged.

The warning is then the only trace of the loss: a mutant that logged nothing survived every
test (each one that fails a record also reads its report or its dead letter).
"""

from __future__ import annotations

import logging

import pytest

from mixpanel_core.emulator import Emulator
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

from .test_buffered_http import _FAST, make_event

pytestmark = pytest.mark.integration


def test_a_record_failed_with_no_report_reader_nor_dead_letter_file_is_logged(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    options = BufferedHttpOptions(**{**_FAST, "retry_budget": 0.0})  # type: ignore[arg-type]
    transport = BufferedHttpTransport(settings, options)  # no report, no dead_letter_path
    mixpanel_emulator.client.fail_next(1, 503, endpoints=["track"])
    with caplog.at_level(logging.WARNING, logger="mixpanel_core.buffering"):
        transport.send(make_event("unheard", 0))
        assert transport.flush(30) == []
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "mixpanel_core.buffering" and r.levelno >= logging.WARNING
    ]
    assert any("1 record(s) not delivered" in line and "503" in line for line in lines), lines
    assert mixpanel_emulator.client.insert_ids("track") == []
    transport.close(30)
