"""``on_poison = "stop"`` when the group rebalances while the forwarder stops, against the real
broker and the emulator: the message says what happened to the partition of the record to stop
at, which the rebalance revoked, and which no other member reads.

The message said the partition "was assigned to another consumer while stopping" whenever it
was revoked, also when it could only come back to this one (eager assignors revoke every
partition, then hand most of them back).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python

from .conftest import FAST_GROUP, ForwardingRig, error_line, free_port

pytestmark = pytest.mark.integration

BEFORE = 10
"""Records ahead of the poison on its partition: offsets 0..9; the poison is offset 10."""


@pytest.fixture
def rig_partitions() -> int:
    return 1


def test_a_partition_revoked_while_stopping_is_not_said_to_be_another_consumers(
    rig: ForwardingRig, kafka_topic_factory: Callable[..., str]
) -> None:
    rig.produce_events(BEFORE)
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])
    # Mixpanel failing keeps the records before the poison buffered while the forwarder stops,
    # for up to the (long) deadline: the rebalance below comes while it stops.
    rig.emulator.client.fail_fraction(1.0, statuses=(503,))
    port = free_port()
    config = rig.stop_config(metrics_port=port, shutdown_deadline=60.0, http={"retry_budget": 1.0})
    process = rig.start(config)
    rig.wait_for_consumed(port, BEFORE + 1)  # the poison too: the forwarder is stopping

    # A member joins the group for another topic: the group rebalances, and the rig's
    # partition is revoked, to be handed back to the forwarder, the only member reading it.
    kafka = kafka_python()
    other = kafka.KafkaConsumer(
        bootstrap_servers=rig.bootstrap, group_id=rig.group, enable_auto_commit=False, **FAST_GROUP
    )
    try:
        other.subscribe([kafka_topic_factory(partitions=1)])
        # The revocation drops the buffered records, which ends the stop.
        give_up = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < give_up:
            other.poll(timeout_ms=200)
    finally:
        other.close(autocommit=False)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 1, stderr
    where = f"{rig.topic}[0]"
    assert f"partitions revoked: {where}" in stderr, stderr
    error = error_line(stderr)
    assert f"stopping at {where}@{BEFORE} (decode)" in error, error
    assert f"{where} was revoked (and perhaps assigned again) while stopping" in error, error
    assert "another consumer" not in error, error
    assert f"stops at offset {BEFORE} again" in error, error
    assert "skip it by committing" not in error, error
    assert rig.committed() == {0: None}
