"""``on_poison = "stop"`` against the real broker and the emulator: the records read before the
record that stops the forwarder are delivered and committed before it stops, and its message
says how to skip the record only when that loses nothing.

docs/forwarder.md, *Dead letters*: the first poison record "stops the forwarder with exit 1,
naming its topic, partition, offset and reason, and neither it nor anything after it on its
partition is committed; what was accepted before it is". The records before it used to wait in
the forwarder's buffer (``linger``) when the poison was read, and were neither delivered nor
committed: an operator who then skipped the record as the message invited, by committing the
offset after it, lost them all.
"""

from __future__ import annotations

import collections
import re
import subprocess
import time

import pytest

from mixpanel_core.kafka import headers

from .conftest import ForwardingRig, wait_until

pytestmark = pytest.mark.integration

BEFORE = 10
"""Records ahead of the poison on its partition: offsets 0..9; the poison is offset 10."""
POISON = BEFORE


DEADLINE = 3.0
MARGIN = 7.0
"""Generous on shared cores: the exit takes the deadline plus about a second."""


@pytest.fixture
def rig_partitions() -> int:
    """One partition: a record's offset is its place in the order produced."""
    return 1


def test_the_records_before_the_poison_are_delivered_and_the_advised_skip_loses_nothing(
    rig: ForwardingRig,
) -> None:
    before = rig.produce_events(BEFORE, prefix="before")
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])
    after = rig.produce_events(5, prefix="after")
    config = rig.stop_config()

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    where = f"{rig.topic}[0]"
    assert f"stopping at {where}@{POISON} (decode)" in stderr, stderr
    assert "on_poison is 'stop'" in stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(before), "delivered before stopping"
    assert rig.committed() == {0: POISON}, "committed up to the poison, not past it"
    assert f"offset {POISON} is committed" in stderr, stderr
    assert f"skip it by committing offset {POISON + 1} on {where}" in stderr, stderr
    assert repr(rig.group) in stderr, "the group to commit for"

    # The operator follows the advice.
    rig.commit(POISON + 1)
    code, stderr = rig.run_until_caught_up(rig.stop_config(linger=0.2))

    assert code == 0, stderr
    counts = collections.Counter(rig.delivered_insert_ids())
    assert sorted(counts) == sorted(before + after), "nothing lost by the skip"
    assert set(counts.values()) == {1}, "the records after the poison were not sent before"
    assert rig.committed() == {0: BEFORE + 1 + len(after)}


def test_when_the_records_before_the_poison_cannot_be_delivered_no_skip_is_advised(
    rig: ForwardingRig,
) -> None:
    rig.produce_events(BEFORE, prefix="before")
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])
    rig.emulator.client.fail_fraction(1.0, statuses=(503,))
    config = rig.stop_config(shutdown_deadline=2.0)

    code, stderr = rig.run_until_caught_up(config, timeout=120)

    assert code == 1, stderr
    assert f"stopping at {rig.topic}[0]@{POISON} (decode)" in stderr, stderr
    assert rig.delivered_insert_ids() == []
    assert all(o in (None, 0) for o in rig.committed().values())
    [error] = [line for line in stderr.splitlines() if "stopping at" in line and "skip" in line]
    assert re.search(rf"{BEFORE} records read before it .* were not delivered", error), error
    assert "Do not skip the record yet" in error, error
    assert "skip it by committing" not in error, error


def test_a_poison_read_while_mixpanel_asks_for_a_long_wait_stops_at_the_shutdown_deadline(
    rig: ForwardingRig,
) -> None:
    """The records before the poison are due (a full batch) when it is read, and Mixpanel
    answers 429 asking for 600 s: the stop, requested when the poison is read, ends the wait
    at ``shutdown_deadline`` as a SIGTERM's does. It used to be requested only once the
    delivery round had waited the Retry-After out."""
    rig.produce_events(BEFORE, prefix="before")
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])
    rig.emulator.client.fail_fraction(1.0, statuses=(429,), retry_after=600)
    # A full batch is due at once: read in the poll that reads the poison, or before it (then
    # the poison is read during the wait after the 429).
    config = rig.stop_config(batch_records=BEFORE, linger=0.2, shutdown_deadline=DEADLINE)
    process = rig.start(config)

    def rate_limited() -> int:
        return int(rig.emulator.client.stats()["requests"].get("track", {}).get("429", 0))

    wait_until(lambda: rate_limited() >= 1, 60)
    answered_at = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=DEADLINE + MARGIN)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"still running {DEADLINE + MARGIN:.0f}s after the first 429\n{stderr}")
    took = time.monotonic() - answered_at

    assert process.returncode == 1, stderr
    assert took < DEADLINE + MARGIN, f"{took:.1f}s"
    assert f"stopping at {rig.topic}[0]@{POISON} (decode)" in stderr, stderr
    assert rig.delivered_insert_ids() == []
    assert all(o in (None, 0) for o in rig.committed().values()), "nothing delivered"
    [error] = [line for line in stderr.splitlines() if "stopping at" in line and "skip" in line]
    assert re.search(rf"{BEFORE} records read before it .* were not delivered", error), error
    assert "Do not skip the record yet" in error, error
    assert "skip it by committing" not in error, error
