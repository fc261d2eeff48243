"""The lag while Mixpanel fails, against the real broker and the emulator.

docs/forwarder.md, *Observing it*: ``mixpanel_forwarder_partition_lag`` is the "records between
the last committable offset and the partition's end", and the line at exit shows "the lag
measured after the last commit". While deliveries fail the forwarder pauses its partitions,
and a paused partition is not fetched: its end, as the fetches report it, stops moving. The
gauge and the exit line then showed the lag of the moment the partitions were paused, however
much the topic grew behind them, just when an operator watches it.
"""

from __future__ import annotations

import re
import signal

import pytest

from .conftest import ForwardingRig, free_port, wait_until

pytestmark = pytest.mark.integration

DELIVERED = 100
FAILING = 50
"""Read once Mixpanel fails: they fail, are put back, and the partitions are paused."""
BEHIND = 500
"""Produced while the partitions are paused: never fetched before the stop."""


@pytest.fixture
def rig_partitions() -> int:
    return 1


def test_the_lag_counts_the_records_produced_while_the_partitions_are_paused(
    rig: ForwardingRig,
) -> None:
    rig.produce_events(DELIVERED, prefix="delivered")
    port = free_port()
    # A short retry budget: each delivery round ends within about a second, so the main loop
    # measures the lag between rounds, as it always did.
    config = rig.write_config(
        {"metrics_port": port, "shutdown_deadline": 2.0}, http={"retry_budget": 1.0}
    )
    process = rig.start(config)
    rig.wait_for_delivered(DELIVERED)
    wait_until(lambda: rig.committed() == {0: DELIVERED}, 30)

    rig.emulator.client.fail_fraction(1.0, statuses=(500,))
    rig.produce_events(FAILING, prefix="failing")
    retried = "mixpanel_forwarder_records_retried_total"
    wait_until(lambda: (rig.metric(port, retried) or 0) >= FAILING, 60)  # paused by now
    rig.produce_events(BEHIND - 1, prefix="behind")
    # Alone in its batch: some Kafka-compatible brokers (the embedded test broker) list the
    # end of a partition as the first offset of its last batch, plus one.
    rig.produce_events(1, prefix="last")
    expected = FAILING + BEHIND  # end 650, committed 100

    wait_until(lambda: (rig.lag(port) or 0) >= expected, 30)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    assert rig.committed() == {0: DELIVERED}
    [closing] = re.findall(r"forwarder stopped: .* lag=(\d+)", stderr)
    assert int(closing) == expected, stderr
