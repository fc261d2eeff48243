"""A ``BufferedConsumer`` whose flush met refused credentials keeps those records for the next.

Mixpanel's 401 says nothing about the records: they are FAILED, not rejected, and the
consumer keeps what failed for the next ``flush()``, as for a 503. The refusal reaches the
consumer as an ``AuthenticationError``; a mutant that raised its ``MixpanelException``
without the error's reports made the consumer keep nothing (it keeps what the reports say
failed), so the records vanished after the raise, and it survived every test.
"""

from __future__ import annotations

import pytest

from mixpanel_core import wire
from mixpanel_core.compat import MixpanelException
from mixpanel_core.compat_consumers import BufferedConsumer
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration


def test_records_refused_for_their_credentials_are_raised_kept_and_sent_by_the_next_flush(
    mixpanel_emulator: Emulator,
) -> None:
    consumer = BufferedConsumer(api_host=mixpanel_emulator.base_url, retry_limit=0)
    insert_ids = [f"refused-once-{n}" for n in range(3)]
    for insert_id in insert_ids:
        record = {
            "event": "Backfilled",
            "properties": {
                "token": "emulator-token",
                "distinct_id": "user-1",
                "time": 1_700_000_000,
                "$insert_id": insert_id,
            },
        }
        consumer.send("imports", wire.dumps(record).decode(), api_secret="emulator-secret")
    mixpanel_emulator.client.fail_next(1, 401, endpoints=["import"])
    with pytest.raises(MixpanelException) as caught:
        consumer.flush()
    assert caught.value.endpoint == "imports"
    assert [r.status for r in caught.value.reports] == [DeliveryStatus.FAILED] * 3
    assert mixpanel_emulator.client.insert_ids("import") == []

    consumer.flush()  # the credentials are taken now: what was kept goes
    assert mixpanel_emulator.client.insert_ids("import") == insert_ids
