"""The buffer stops being backlogged once the records put back after a failed round are taken
again (pending.py): the partitions are paused only while records wait to be retried, or an
endpoint holds a full batch. Left backlogged, one failed round would pause reading whenever
anything at all is buffered, for the rest of the forwarder's life."""

from __future__ import annotations

import json

from mixpanel_core.forwarder.offsets import PartitionProgress
from mixpanel_core.forwarder.pending import PendingBatches, PendingRecord
from mixpanel_core.messages import message_from_json


def _record(offset: int) -> PendingRecord:
    value = {"event": "E", "properties": {"token": "t", "distinct_id": "u", "$insert_id": "i"}}
    message = message_from_json("track", json.dumps(value).encode())
    return PendingRecord(PartitionProgress("p0"), offset, message, raw=None)


def test_records_read_after_a_retry_was_taken_do_not_keep_the_buffer_backlogged() -> None:
    pending = PendingBatches(batch_records=10, linger=60.0)
    pending.add(_record(0), now=0.0)
    [endpoint] = pending.due(0.0, everything=True)
    pending.put_back(endpoint, pending.take(endpoint), now=1.0)
    assert pending.backlogged, "a record waits to be retried"

    pending.take(endpoint)  # tried again (and delivered, this time)
    pending.add(_record(1), now=2.0)

    assert not pending.backlogged, "one record of ten, none to retry: read on"
