"""A ``MixpanelException`` says why the records Mixpanel did not accept were refused.

When part of a request is accepted (a strict ``/import`` 400 names only the bad records), the
text must carry the reason of a record that was refused, not of the first record of the batch:
a mutant that took the first report (accepted, with no reason) raised "Mixpanel error: None"
and survived every test.
"""

from __future__ import annotations

import pytest

from mixpanel_core import wire
from mixpanel_core.compat import MixpanelException
from mixpanel_core.compat_consumers import BufferedConsumer, Consumer
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
SECRET = "emulator-secret"


def _record(insert_id: str, time: int) -> dict[str, object]:
    return {
        "event": "Backfilled",
        "properties": {
            "token": TOKEN,
            "distinct_id": "user-1",
            "time": time,
            "$insert_id": insert_id,
        },
    }


GOOD = _record("good-1", 1_700_000_000)
BEFORE_1971 = _record("before-1971", 1_000)


@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_the_text_gives_the_reason_of_the_refused_record_behind_an_accepted_one(
    mixpanel_emulator: Emulator, consumer_class: type[Consumer] | type[BufferedConsumer]
) -> None:
    consumer = consumer_class(api_host=mixpanel_emulator.base_url, retry_limit=0)
    batch = wire.dumps([GOOD, BEFORE_1971]).decode()
    if isinstance(consumer, BufferedConsumer):
        consumer.send("imports", batch, api_secret=SECRET)  # held: fewer than max_size
        with pytest.raises(MixpanelException) as caught:
            consumer.flush()
    else:
        with pytest.raises(MixpanelException) as caught:
            consumer.send("imports", batch, api_secret=SECRET)
    # One request: the good record went in, the other was named by Mixpanel's answer.
    assert mixpanel_emulator.client.insert_ids("import") == ["good-1"]
    reports = caught.value.reports
    (refused,) = [r for r in reports if r.status is not DeliveryStatus.ACCEPTED]
    assert refused.message is not None
    assert refused.message.insert_id == "before-1971"
    assert refused.reason
    text = str(caught.value)
    assert refused.reason in text, text
    assert "1 of 2 records not accepted" in text
