"""``on_poison = "stop"`` on a record Mixpanel rejects at delivery, against the real broker and
the emulator: the records after it on its partition that were read into the forwarder's buffer
but not sent yet (in a later batch than the rejected record's request) are never sent.

They stay uncommitted, so a restart reads them again (after the operator skips the rejected
record, or without a skip): sent now as well, each would go out twice, and a profile ``$add``
would be applied twice. ``DeliveryRounds`` drops them (``PendingBatches.drop_after``) before
each round, so also before the shutdown delivers what is buffered.
"""

from __future__ import annotations

import collections

import pytest

from mixpanel_core.kafka import headers

from .conftest import ForwardingRig, error_line, track_event

pytestmark = pytest.mark.integration

BATCH = 5
"""Offsets 0..4 go out in the first request; 5..11 wait in the buffer behind it."""
RECORDS = 12
REJECTED = 2
"""The event Mixpanel rejects: its token is not the project's. (A ``time`` too old for
``/track`` would not do: the forwarder's decode refuses that before any delivery.)"""


@pytest.fixture
def rig_partitions() -> int:
    """One partition: a record's offset is its place in the order produced."""
    return 1


def test_the_records_buffered_after_a_rejected_record_are_not_sent(rig: ForwardingRig) -> None:
    rig.produce_raws(
        [track_event(i, REJECTED) for i in range(RECORDS)], [(headers.ENDPOINT, b"track")]
    )
    # All twelve records are read at once; a full batch is due at once, so the first request
    # holds offsets 0..4 and the rest wait (linger far longer than the run) until the stop.
    config = rig.stop_config(batch_records=BATCH, linger=60.0)

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    where = f"{rig.topic}[0]"
    error = error_line(stderr)
    assert f"stopping at {where}@{REJECTED} (delivery)" in error, error
    assert "same answer" not in error, "rejected alone"
    # The request's other events were accepted (the client resends the halves of a request
    # until the refused event stands alone, so some went out more than once: the set counts).
    sent = collections.Counter(rig.delivered_insert_ids())
    first_request = {f"id-{i}" for i in range(BATCH) if i != REJECTED}
    assert set(sent) == first_request, "nothing buffered after the first request was sent"
    assert not set(sent) & {f"id-{i}" for i in range(BATCH, RECORDS)}
    assert rig.committed() == {0: REJECTED}, "committed up to the rejected record, not past it"
    assert f"skip it by committing offset {BATCH} on {where}" in error, error

    # The operator follows the advice: each buffered record is sent once, by the restart.
    rig.commit(BATCH)
    code, stderr = rig.run_until_caught_up(rig.stop_config(linger=0.2))

    assert code == 0, stderr
    sent_again = collections.Counter(rig.delivered_insert_ids()) - sent
    assert sent_again == {f"id-{i}": 1 for i in range(BATCH, RECORDS)}, "each sent once"
    assert rig.committed() == {0: RECORDS}
