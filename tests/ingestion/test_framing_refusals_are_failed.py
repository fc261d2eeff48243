"""A 411 or 415 is FAILED, not REJECTED: something on the way (a proxy refusing
``Content-Encoding: gzip``, say) would not take the request as framed, and Mixpanel never
judged the records, as with a 404 or 405 (review R75 F4).

Before, such an answer fell under "a 4xx not named elsewhere": every record REJECTED,
dead-lettered as refused for good and never sent again.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, event
from .scripted import ScriptedServer, answer, raw


@pytest.mark.parametrize(
    "status", ["411 Length Required", "415 Unsupported Media Type"], ids=["411", "415"]
)
def test_a_framing_refusal_fails_the_records_once_and_says_what_to_check(
    scripted: Callable[..., ScriptedServer], status: str
) -> None:
    server = scripted(answer(raw(status, b"refused by the proxy")))
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    client = IngestionClient(settings, attrs.evolve(FAST, gzip=True, max_retries=3))

    reports = client.send_batch("track", [event(), event()]).reports

    assert len(server.requests) == 1  # not retried: the same bytes get the same answer
    code = int(status[:3])
    assert [(r.status, r.http_status, r.attempts) for r in reports] == [
        (DeliveryStatus.FAILED, code, 1)
    ] * 2
    reason = reports[0].reason or ""
    assert reason.startswith(f"HTTP {code}: refused by the proxy; "), reason
    assert "mixpanel.urls" in reason
    assert "gzip = false" in reason
