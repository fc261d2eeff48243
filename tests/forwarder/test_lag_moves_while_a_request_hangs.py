"""While a request to Mixpanel hangs, the forwarder keeps polling Kafka (partitions paused) and
measuring, against the real broker and the emulator: the lag gauge counts records produced
meanwhile, instead of freezing until the request's read timeout ends it (docs/forwarder.md:
a slow request does not hold a rebalance, the lag or the progress line for long)."""

from __future__ import annotations

import signal

import pytest

from .conftest import ForwardingRig, free_port, wait_until

pytestmark = pytest.mark.integration

READ_TIMEOUT = 60.0
"""Far longer than the test: the request stays out for all of it."""
BEFORE = 10
DURING = 20


@pytest.fixture
def rig_partitions() -> int:
    return 1


def test_the_lag_counts_records_produced_while_a_request_hangs(rig: ForwardingRig) -> None:
    rig.produce_events(BEFORE, prefix="before")
    port = free_port()
    config = rig.write_config(
        {"metrics_port": port, "shutdown_deadline": 2.0}, http={"read_timeout": READ_TIMEOUT}
    )
    rig.emulator.client.stall()
    process = rig.start(config)
    wait_until(lambda: rig.emulator.client.faults()["stalled_requests"] > 0, 60)
    rig.produce_events(DURING - 1, prefix="during")
    # Alone in its batch: some Kafka-compatible brokers (the embedded test broker) list the
    # end of a partition as the first offset of its last batch, plus one.
    rig.produce_events(1, prefix="last")

    wait_until(lambda: (rig.lag(port) or 0) >= BEFORE + DURING, 20)

    assert rig.emulator.client.faults()["stalled_requests"] > 0, "still out"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert rig.committed() == {0: None}, "nothing was delivered"
