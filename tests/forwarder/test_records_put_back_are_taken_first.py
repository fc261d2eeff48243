"""Records put back after a failed round are the next ones taken, ahead of the records read
after them (pending.py): a batch larger than one request is delivered in Kafka's order, so a
profile ``$set`` retried is never applied after a later ``$set`` of the same property, which
would leave the older value in Mixpanel."""

from __future__ import annotations

import json

from mixpanel_core.forwarder.offsets import PartitionProgress
from mixpanel_core.forwarder.pending import PendingBatches, PendingRecord
from mixpanel_core.messages import message_from_json


def _record(progress: PartitionProgress, offset: int) -> PendingRecord:
    value = {"$token": "t", "$distinct_id": "u", "$set": {"plan": f"plan-{offset}"}}
    message = message_from_json("engage", json.dumps(value).encode())
    return PendingRecord(progress, offset, message, raw=None)


def test_records_put_back_are_taken_before_the_records_read_after_them() -> None:
    progress = PartitionProgress("p0")
    pending = PendingBatches(batch_records=2, linger=0.0)
    for offset in range(3):
        pending.add(_record(progress, offset), now=0.0)
    [endpoint] = pending.due(0.0)

    first = pending.take(endpoint)
    assert [item.offset for item in first] == [0, 1]
    pending.put_back(endpoint, first, now=1.0)  # the request failed: tried again next round

    assert [item.offset for item in pending.take(endpoint)] == [0, 1]
    assert [item.offset for item in pending.take(endpoint)] == [2]
