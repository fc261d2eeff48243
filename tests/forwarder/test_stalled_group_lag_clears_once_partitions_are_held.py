"""``stalled_group_lag`` goes back to 0 as soon as the forwarder holds a partition again,
against the real broker: the gauge counts records waiting while no member of the group delivers,
and a forwarder that took a partition over is delivering (a gauge stuck at the old count would
page someone for a group that recovered).

The watch is driven here as the loop's turns drive it (``tick``), over a group that never
commits on a topic with records waiting.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from mixpanel_core.forwarder.idle_watch import IdleWatch
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.kafka.client_library import kafka_python

from .conftest import ForwardingRig, wait_until
from .test_idle_warning import WAITING, _produce

pytestmark = pytest.mark.integration

EVERY = 0.2
"""The watch's ``idle_warning``: seconds between two reads of the group's commits."""


@pytest.fixture
def rig_partitions() -> int:
    return 1


def test_the_stalled_group_gauge_clears_when_the_forwarder_holds_a_partition(
    rig: ForwardingRig,
) -> None:
    _produce(rig, WAITING)

    def reader() -> Any:
        return kafka_python().KafkaConsumer(
            bootstrap_servers=rig.bootstrap, group_id=rig.group, enable_auto_commit=False
        )

    metrics = ForwarderMetrics()
    watch = IdleWatch(reader, rig.topic, rig.group, EVERY, metrics)

    def idle_turns_found_the_stall() -> bool:
        watch.tick(time.monotonic(), holds_partitions=False)
        time.sleep(0.05)
        return metrics.stalled_group_lag == WAITING

    try:
        # Two reads finding the same commits (none) with records waiting: a stalled group.
        wait_until(idle_turns_found_the_stall, 60)
        watch.tick(time.monotonic(), holds_partitions=True)
        assert metrics.stalled_group_lag == 0
    finally:
        watch.close()
