"""The lag gauge and the progress line while one delivery is being retried, against the real
broker and the emulator.

docs/forwarder.md, *Observing it*: a log line with the counters and the lag "every
``log_interval`` seconds", which keep moving "while a delivery is being retried (up to the
HTTP ``retry_budget``), not only between deliveries". A delivery that Mixpanel keeps failing
is retried inside the ingestion client for up to ``retry_budget`` (60 s by default); the lag
and the progress line were only updated between deliveries, so for that whole time the
forwarder looked idle, and its lag stood still however much the topic grew.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from .conftest import ForwardingRig, free_port, wait_until

pytestmark = pytest.mark.integration

FIRST = 20
"""Read before Mixpanel fails: one batch, retried inside one delivery."""
LATER = 30
"""Produced while that delivery is retried: behind the paused partition, not fetched."""
RETRIED = "mixpanel_forwarder_records_retried_total"


@pytest.fixture
def rig_partitions() -> int:
    return 1


def _failed_requests(rig: ForwardingRig) -> int:
    return int(rig.emulator.client.stats()["requests"].get("track", {}).get("500", 0))


def test_the_lag_and_the_progress_line_move_while_a_delivery_is_retried(
    rig: ForwardingRig,
) -> None:
    rig.emulator.client.fail_fraction(1.0, statuses=(500,))
    rig.produce_events(FIRST, prefix="first")
    port = free_port()
    # The rig's retry budget is the default 60 s: the first delivery keeps retrying (every
    # 0.025 to 0.2 s) for longer than this test waits for the lag.
    config = rig.write_config({"metrics_port": port, "log_interval": 0.5})
    process = rig.start(config)
    wait_until(lambda: _failed_requests(rig) >= 1, 60)
    rig.produce_events(LATER - 1, prefix="later")
    # Alone in its batch: some Kafka-compatible brokers (the embedded test broker) list the
    # end of a partition as the first offset of its last batch, plus one.
    rig.produce_events(1, prefix="last")

    seen_during: list[int] = []

    def lag_moved_during_the_delivery() -> bool:
        lag = rig.lag(port) or 0
        # ``retried`` is counted when a delivery returns: 0 after the lag was read means the
        # first delivery had not returned when the gauge showed the records produced since.
        if lag >= FIRST + LATER and rig.metric(port, RETRIED) == 0:
            seen_during.append(lag)
        return bool(seen_during)

    wait_until(lag_moved_during_the_delivery, 30)
    # Still failing for four log intervals: a progress line comes in them with that lag. (Let
    # go at once, the delivery returned before the next line on a loaded machine, in CI.)
    time.sleep(4 * 0.5)
    assert rig.metric(port, RETRIED) == 0, "the first delivery is still being retried"
    rig.emulator.client.fail_fraction(0)
    rig.wait_for_delivered(FIRST + LATER)
    wait_until(lambda: rig.committed() == {0: FIRST + LATER}, 30)
    retried = rig.metric(port, RETRIED)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    assert seen_during == [FIRST + LATER]
    # Counted once the delivery returned: every resend of the first batch's 20 records.
    failed = _failed_requests(rig)
    assert retried == FIRST * failed, (retried, failed)
    # The progress line kept coming during the delivery, with the lag of the records
    # produced meanwhile.
    during = [
        line
        for line in re.findall(r"forwarder progress: (.*)", stderr)
        if re.search(r"\bdelivered=0 .*\bretried=0 .*\blag=50\b", line)
    ]
    assert during, stderr
