"""The ``http`` transport reports the records of a request whose credentials were refused.

``send`` raises ``AuthenticationError`` then, and the caller may catch it and go on: the
report is the only trace a ``mixpanel_delivered`` hook (or a dead-letter writer behind it)
gets of the record. Written from a mutation audit: skipping those reports failed no test.
"""

from __future__ import annotations

import time

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.frozen import freeze
from mixpanel_core.ingestion import HttpOptions
from mixpanel_core.messages import ImportEvent
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings
from transports.http import HttpTransport

pytestmark = pytest.mark.integration


def test_a_refused_credential_is_reported_before_send_raises(mixpanel_emulator: Emulator) -> None:
    reports: list[DeliveryReport] = []
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, api_secret=Secret("nope"))
    transport = HttpTransport(settings, HttpOptions(), name="direct", report=reports.append)
    record = {
        "event": "e",
        "properties": {
            "token": "emulator-token",
            "distinct_id": "u1",
            "time": time.time() - 10,
            "$insert_id": "refused-00000000000001",
        },
    }
    message = ImportEvent(freeze(record, ImportEvent.kind))
    with pytest.raises(AuthenticationError) as caught:
        transport.send(message)
    assert [(r.status, r.transport, r.http_status) for r in reports] == [
        (DeliveryStatus.FAILED, "direct", 401)
    ]
    assert reports == list(caught.value.reports)
    assert reports[0].message == message
    assert mixpanel_emulator.client.insert_ids("import") == []
    transport.close()
