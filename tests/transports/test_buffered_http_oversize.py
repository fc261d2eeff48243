"""A record bigger than the whole ``max_queue_bytes`` is refused at once, and told so.

It can never be queued, however long one waits or whatever is evicted. It used to be refused
as if the queue had "stayed full (0 messages, 0 bytes) for 1.0s", advising a longer
``block_timeout``, though it did not wait and the queue was empty. The reason now names the
record's counted size and ``max_queue_bytes``, the one setting that helps.
"""

from __future__ import annotations

import time

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import QueueFullError
from mixpanel_core.sender_records import held_bytes

from .test_buffered_http import make_event, transport_for

pytestmark = pytest.mark.integration

MAX_QUEUE_BYTES = 10_000


@pytest.mark.parametrize("when_full", ["block", "drop_newest", "drop_oldest"])
def test_a_record_bigger_than_the_queue_is_refused_at_once_naming_its_size(
    mixpanel_emulator: Emulator, when_full: str
) -> None:
    reports: list[DeliveryReport] = []
    transport = transport_for(
        mixpanel_emulator,
        reports,
        when_full=when_full,
        max_queue_bytes=MAX_QUEUE_BYTES,
        block_timeout=60.0,
    )
    small = make_event("fits", 0)
    big = make_event("too-big", 0, blob="x" * 1500)
    size = held_bytes(big.json(), True)  # the message is kept: a reader of reports
    assert size > MAX_QUEUE_BYTES
    transport.send(small)
    started = time.monotonic()
    if when_full == "block":
        with pytest.raises(QueueFullError) as refused:
            transport.send(big)
        assert time.monotonic() - started < 10.0  # not the 60 s block_timeout
        told = str(refused.value)
        assert "block_timeout" in told
        assert "cannot help" in told
    else:
        transport.send(big)
    assert transport.close(30) == []
    dropped = [r for r in reports if r.status is DeliveryStatus.DROPPED]
    assert [r.message for r in dropped] == [big]
    reason = dropped[0].reason
    assert reason is not None
    for text in [reason, told] if when_full == "block" else [reason]:
        assert f"the record counts {size} bytes" in text
        assert f"max_queue_bytes ({MAX_QUEUE_BYTES})" in text
        assert "raise max_queue_bytes" in text
        assert "full" not in text  # the queue held one small record: it was not full
    # Nothing was evicted for it, under drop_oldest either: the small one is delivered.
    assert mixpanel_emulator.client.insert_ids("track") == ["fits-000000000000"]
