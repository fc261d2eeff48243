"""A delivery out when the group rebalances, against the real broker and the emulator.

docs/forwarder.md, *Scaling*: for a partition it gets back, the forwarder commits what it
delivered before the rebalance right after it; a partition that moved is read again by its new
owner. And *What it guarantees*: while a delivery waits (between retries, and for an answer),
``poll()`` is still called, so the member stays in its group.

Before, a delivery being retried when its partitions were revoked went on retrying all of them,
those now owned by another member included, and the partitions it got back were read and sent
again from where they were at the revocation: what the delivery got accepted was never
counted. And a request waiting for its answer did not poll at all: a member joining waited for
that answer (up to ``read_timeout``) to get any partition, and the lag was not measured.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from mixpanel_core.kafka.fixtures import read_records
from mixpanel_core.messages import ImportEvent, Message
from transports.kafka import KafkaTransport

from .conftest import ForwardingRig, free_port, wait_until

pytestmark = pytest.mark.integration

PRODUCED = 1200
LATER = 30


def _copies_by_partition(rig: ForwardingRig, ids: list[str]) -> dict[int, Counter[int]]:
    """For each partition: how many of the records ``ids`` Mixpanel accepted how many times."""
    records = read_records(rig.bootstrap, rig.topic, PRODUCED + LATER)
    where = {json.loads(r.value)["properties"]["$insert_id"]: r.partition for r in records}
    accepted = Counter(rig.delivered_insert_ids())
    copies: dict[int, Counter[int]] = {}
    for insert_id in ids:
        copies.setdefault(where[insert_id], Counter())[accepted[insert_id]] += 1
    return copies


def _stop(process: subprocess.Popen[str], log: Path) -> str:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()
    return log.read_text()


def _ends(rig: ForwardingRig, count: int) -> dict[int, int]:
    ends: dict[int, int] = {}
    for record in read_records(rig.bootstrap, rig.topic, count):
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


def test_a_delivery_being_retried_stops_retrying_the_records_of_partitions_that_moved(
    rig: ForwardingRig,
) -> None:
    """One batch of every record, retried (503) for up to a minute, when a second member
    joins: the partitions that moved are read again by their new owner only, the ones that came
    back by the first member only; every record is accepted once, and all is committed."""
    rig.produce_events(PRODUCED)
    rig.emulator.client.fail_fraction(1.0, statuses=(503,))
    first_port, second_port = free_port(), free_port()
    forwarder = {"batch_records": PRODUCED, "linger": 1.0}
    http = {"retry_budget": 60.0}
    first, first_log = rig.start_logged(
        rig.write_config({**forwarder, "metrics_port": first_port}, http=http)
    )
    rig.wait_for_consumed(first_port, PRODUCED)
    second, second_log = rig.start_logged(
        rig.write_config({**forwarder, "metrics_port": second_port}, http=http)
    )
    rig.wait_for_consumed(second_port, 1)  # the rebalance is over: both have partitions
    wait_until(lambda: first_log.read_text().count("partitions assigned") >= 2, 30)

    rig.emulator.client.clear_faults()
    wait_until(lambda: len(set(rig.delivered_insert_ids())) >= PRODUCED, 60)
    ends = _ends(rig, PRODUCED)
    wait_until(lambda: rig.committed() == ends, 30)
    first_text = _stop(first, first_log)
    _stop(second, second_log)

    accepted = rig.emulator.client.stats()["accepted"]["track"]
    assert accepted == PRODUCED, f"{accepted - PRODUCED} records were accepted twice"
    [revoked] = [line for line in first_text.splitlines() if "partitions revoked" in line]
    assert f"and {PRODUCED} of their records are in a delivery still out" in revoked
    assert "partitions revoked: none" not in first_text
    assert "records of the delivery out belong to partitions another member" in first_text


def test_a_member_joins_while_a_request_is_out_and_what_it_gets_accepted_is_committed(
    rig: ForwardingRig,
) -> None:
    """Mixpanel holds the first member's one request. A second member gets its partitions
    meanwhile (the first keeps polling), the first member's lag keeps being measured, and once
    the request is answered the partitions the first member got back are committed without
    being sent again; only those that moved are sent again, by their new owner."""
    ids = rig.produce_events(PRODUCED)
    rig.emulator.client.stall()
    first_port, second_port = free_port(), free_port()
    forwarder = {"batch_records": PRODUCED, "linger": 1.0}
    try:
        first, first_log = rig.start_logged(
            rig.write_config({**forwarder, "metrics_port": first_port})
        )
        rig.wait_for_consumed(first_port, PRODUCED)
        wait_until(lambda: rig.emulator.client.faults()["stalled_requests"] == 1, 30)
        wait_until(lambda: rig.lag(first_port) is not None, 15)
        lag_before = rig.lag(first_port) or 0
        rig.produce_events(LATER, prefix="later")
        # The default read timeout is 30 s: before, nothing moved until it ran out.
        wait_until(lambda: (rig.lag(first_port) or 0) > lag_before, 15)
        second, second_log = rig.start_logged(
            rig.write_config({**forwarder, "metrics_port": second_port})
        )
        rig.wait_for_consumed(second_port, 1, timeout=20)
        wait_until(lambda: "is back while" in first_log.read_text(), 10)
        assert rig.emulator.client.faults()["stalled_requests"] >= 1, "still out"
    finally:
        rig.emulator.client.release()
    total = PRODUCED + LATER
    wait_until(lambda: len(set(rig.delivered_insert_ids())) >= total, 60)
    ends = _ends(rig, total)
    wait_until(lambda: rig.committed() == ends, 30)
    first_text = _stop(first, first_log)
    _stop(second, second_log)

    copies = _copies_by_partition(rig, ids)
    moved = {p for p, counts in copies.items() if counts.get(2)}
    kept = set(copies) - moved
    assert kept, f"no partition came back to the first member without a resend: {copies}"
    for partition in kept:
        assert set(copies[partition]) == {1}, copies
    for partition in moved:  # sent by the first member, then read again by the second
        assert set(copies[partition]) == {2}, copies
    assert "revoked and assigned back during a delivery" in first_text


def _import_events(count: int, bad_every: int) -> tuple[list[Message], list[str]]:
    """``/import`` events keyed over 40 ids (so over every partition); every ``bad_every``-th
    is dated 1970, which Mixpanel's strict mode rejects naming it. Returns the bad ids too."""
    messages, bad = [], []
    for i in range(count):
        insert_id = f"imp-{i}"
        when = 100 if i % bad_every == 0 else 1_700_000_000
        if when == 100:
            bad.append(insert_id)
        properties = {
            "token": "emulator-token",
            "distinct_id": f"user-{i % 40}",
            "time": when,
            "$insert_id": insert_id,
        }
        messages.append(ImportEvent.from_record({"event": "Old", "properties": properties}))
    return messages, bad


def test_records_rejected_in_a_delivery_out_at_a_rebalance_are_dead_lettered_once(
    rig: ForwardingRig,
) -> None:
    """Mixpanel holds the first member's request while a second member joins; the answer
    rejects some records of every partition. A partition that came back was read again from
    its rejected record, whose dead letter was not yet acknowledged: that record was dead-
    lettered twice and every later record sent again. A partition that moved had its rejected
    records dead-lettered by both members. Each rejected record has one dead letter now."""
    messages, bad = _import_events(400, bad_every=25)
    transport = KafkaTransport(rig.bootstrap, rig.topic)
    for message in messages:
        transport.send(message)
    assert transport.close(10) == []
    rig.emulator.client.stall()
    first_port, second_port = free_port(), free_port()
    forwarder = {"batch_records": 400, "linger": 1.0}
    try:
        first, first_log = rig.start_logged(
            rig.write_config({**forwarder, "metrics_port": first_port}, plugins=[])
        )
        rig.wait_for_consumed(first_port, 400)
        wait_until(lambda: rig.emulator.client.faults()["stalled_requests"] == 1, 30)
        second, second_log = rig.start_logged(
            rig.write_config({**forwarder, "metrics_port": second_port}, plugins=[])
        )
        rig.wait_for_consumed(second_port, 1, timeout=20)
        wait_until(lambda: "is back while" in first_log.read_text(), 10)
    finally:
        rig.emulator.client.release()
    ends = _ends(rig, 400)
    wait_until(lambda: rig.committed() == ends, 60)
    _stop(first, first_log)
    _stop(second, second_log)

    letters = Counter(
        json.loads(record.value)["properties"]["$insert_id"]
        for record in read_records(rig.bootstrap, rig.dead_letter_topic, 2 * len(bad), 3000)
    )
    assert letters == Counter(bad), "each rejected record dead-lettered once"
    good = {m.insert_id for m in messages} - set(bad)
    assert set(rig.emulator.client.insert_ids("import")) == good
