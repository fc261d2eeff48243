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
from pathlib import Path

import pytest

from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration

BEFORE = 10
"""Records ahead of the poison on its partition: offsets 0..9; the poison is offset 10."""
POISON = BEFORE


@pytest.fixture
def rig_partitions() -> int:
    """One partition: a record's offset is its place in the order produced."""
    return 1


def _stop_config(rig: ForwardingRig, **forwarder: object) -> Path:
    # By default a linger far longer than the run: the records before the poison are still
    # buffered when it is read, however the broker splits them over fetches.
    config = rig.write_config(
        {"on_poison": "stop", "dead_letter_topic": None, "linger": 60.0, **forwarder}
    )
    config.write_text(config.read_text().replace("dead_letter_topic = null\n", ""))
    return config


def _commit(rig: ForwardingRig, offset: int) -> None:
    """What an operator does to skip a record: commit the offset after it for the group."""
    kafka = kafka_python()
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=rig.bootstrap, group_id=rig.group, enable_auto_commit=False
    )
    try:
        partition = kafka.TopicPartition(rig.topic, 0)
        consumer.assign([partition])
        consumer.commit({partition: kafka.structs.OffsetAndMetadata(offset, "", -1)})
    finally:
        consumer.close(autocommit=False)


def test_the_records_before_the_poison_are_delivered_and_the_advised_skip_loses_nothing(
    rig: ForwardingRig,
) -> None:
    before = rig.produce_events(BEFORE, prefix="before")
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])
    after = rig.produce_events(5, prefix="after")
    config = _stop_config(rig)

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
    _commit(rig, POISON + 1)
    code, stderr = rig.run_until_caught_up(_stop_config(rig, linger=0.2))

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
    config = _stop_config(rig, shutdown_deadline=2.0)

    code, stderr = rig.run_until_caught_up(config, timeout=120)

    assert code == 1, stderr
    assert f"stopping at {rig.topic}[0]@{POISON} (decode)" in stderr, stderr
    assert rig.delivered_insert_ids() == []
    assert all(o in (None, 0) for o in rig.committed().values())
    [error] = [line for line in stderr.splitlines() if "stopping at" in line and "skip" in line]
    assert re.search(rf"{BEFORE} records read before it .* were not delivered", error), error
    assert "Do not skip the record yet" in error, error
    assert "skip it by committing" not in error, error
