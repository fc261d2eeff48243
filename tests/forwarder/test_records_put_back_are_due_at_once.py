"""Records put back after a failed round are due at once, whatever ``linger`` is: the back-off
between rounds is the only wait before they are tried again (pending.py). Counting their linger
from the moment they were put back would hold a retry for the whole linger (a minute, under
``on_poison = "stop"`` configs that batch for long) on top of the back-off."""

from __future__ import annotations

import json

from mixpanel_core.forwarder.offsets import PartitionProgress
from mixpanel_core.forwarder.pending import PendingBatches, PendingRecord
from mixpanel_core.messages import message_from_json

LINGER = 60.0


def _record(offset: int) -> PendingRecord:
    value = {"event": "E", "properties": {"token": "t", "distinct_id": "u", "$insert_id": "i"}}
    message = message_from_json("track", json.dumps(value).encode())
    return PendingRecord(PartitionProgress("p0"), offset, message, raw=None)


def test_records_put_back_are_due_as_soon_as_they_are_put_back() -> None:
    pending = PendingBatches(batch_records=10, linger=LINGER)
    pending.add(_record(0), now=0.0)
    assert pending.due(1.0) == [], "lingering: not full, not old"
    [endpoint] = pending.due(1.0, everything=True)
    taken = pending.take(endpoint)

    pending.put_back(endpoint, taken, now=2.0)

    assert pending.due(2.0) == [endpoint]
    assert pending.next_due_in(2.0) == 0.0
    assert pending.backlogged, "nothing more is read while they wait"
