"""The emulator's injected 2xx, as the client reads it: the one failure Mixpanel answers with a
2xx (``{"status": 0, "error": ...}``), never a success. Before review R40 F4 the injected body
was /import's success (``"status": "OK"``), so the client reported ACCEPTED records the emulator
never stored: a fault that hid a loss instead of showing one."""

from __future__ import annotations

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.secrets import Secret

from .conftest import FAST, event, import_event, settings_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("endpoint", ["import", "track"])
def test_an_injected_200_is_a_refusal_of_the_record_and_nothing_is_stored(
    mixpanel_emulator: Emulator, endpoint: str
) -> None:
    settings = settings_for(mixpanel_emulator, api_secret=Secret("emulator-secret"))
    client = IngestionClient(settings, FAST)
    mixpanel_emulator.fail_next(1, 200)

    result = client.send_batch(endpoint, [import_event() if endpoint == "import" else event()])

    [report] = result.reports
    assert report.status is DeliveryStatus.REJECTED
    assert report.reason == "injected failure: no record of the request was applied"
    assert mixpanel_emulator.records() == []
