"""A partition's lag counts from its first record not done once the forwarder reads it, against
the real broker and the emulator: where the partition started (the group's commit, asked while
it was not read yet) stands in only until then. A lag measured from that start for good would
show everything in the partition as waiting after all of it was delivered and committed.

The scenario of ``test_lag_of_unread_partitions``: Mixpanel fails the first record read, and the
partitions stay paused before their first fetch, lagging by what they hold; then Mixpanel
recovers and everything is delivered.
"""

from __future__ import annotations

import re
import signal

import pytest

from .conftest import FAST_GROUP, ForwardingRig, free_port, wait_until
from .test_lag_of_unread_partitions import PRODUCED, _produce_one_batch_each

pytestmark = pytest.mark.integration


def test_the_lag_falls_to_zero_once_the_unread_partitions_are_delivered(
    rig: ForwardingRig,
) -> None:
    _produce_one_batch_each(rig, PRODUCED)
    rig.emulator.client.fail_fraction(1.0, statuses=(500,))
    port = free_port()
    config = rig.write_config(
        {
            "metrics_port": port,
            "batch_records": 1,
            "shutdown_deadline": 2.0,
            "consumer": {**FAST_GROUP, "max_poll_records": 1},
        },
        http={"retry_budget": 0.5},
    )
    process = rig.start(config)
    retried = "mixpanel_forwarder_records_retried_total"
    wait_until(lambda: (rig.metric(port, retried) or 0) >= 1, 60)  # paused by now
    wait_until(lambda: (rig.lag(port) or 0) >= PRODUCED, 20)  # the unread ones' starts

    rig.emulator.client.clear_faults()
    rig.wait_for_delivered(PRODUCED)
    wait_until(lambda: sum(o or 0 for o in rig.committed().values()) == PRODUCED, 60)
    wait_until(lambda: rig.lag(port) == 0, 30)

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    [closing] = re.findall(r"forwarder stopped: .* lag=(\d+)", stderr)
    assert int(closing) == 0, stderr
