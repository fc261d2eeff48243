"""Under ``drop_oldest`` a record that needs the room of several queued ones evicts them all.

One eviction is not always enough: a record bigger than the oldest one needs the next one
out too. A mutant that evicted once and queued the record anyway (the queue then held more
than ``max_queue_bytes``, and fewer drops were counted and reported than the bound required)
survived every test: the existing ones needed one eviction at a time.
"""

from __future__ import annotations

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.sender_records import held_bytes

from .test_buffered_http import make_event, transport_for, wait_for_stalled_request

pytestmark = pytest.mark.integration


def test_a_record_needing_two_records_room_evicts_the_two_oldest(
    mixpanel_emulator: Emulator,
) -> None:
    small = [make_event("small", i) for i in range(3)]
    # Counted as the queue counts them: the message is kept, since reports are read.
    sizes = [held_bytes(m.json(), True) for m in small]
    # Bigger than the oldest record's room, not more than the two oldest ones'.
    big = make_event("big", 0, blob="x" * (len(small[0].json()) // 2 + 40))
    assert sizes[0] < held_bytes(big.json(), True) <= sizes[0] + sizes[1]

    reports: list[DeliveryReport] = []
    transport = transport_for(
        mixpanel_emulator,
        reports,
        when_full="drop_oldest",
        max_queue_bytes=sum(sizes),
        max_batch_records=1,
        linger=0.0,
    )
    mixpanel_emulator.client.stall()
    first = make_event("first", 0)
    transport.send(first)
    wait_for_stalled_request(mixpanel_emulator)  # in flight: no longer queued
    for message in small:
        transport.send(message)  # the queue is full now, by bytes
    transport.send(big)

    assert transport.dropped == 2
    drops = [r.message for r in reports if r.status is DeliveryStatus.DROPPED]
    assert drops == small[:2]
    mixpanel_emulator.client.release()
    assert transport.close(30) == []
    assert mixpanel_emulator.client.insert_ids("track") == [
        m.insert_id for m in (first, small[2], big)
    ]
