"""The forwarder's re-send rounds wait at least what the server's ``Retry-After`` asked for,
against the real broker and the emulator.

docs/forwarder.md, *Backpressure without rebalances*: records still undelivered after the
HTTP retry budget are tried again after a wait, and "a ``Retry-After`` is the least wait, as
for the HTTP retries". An answer asking for a longer wait than what is left of the budget ends
the client's retries at once; the round that tried again then waited on the usual schedule,
so a Mixpanel asking for N seconds of quiet got the same batch again within a fraction of a
second, round after round.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from .conftest import ForwardingRig, wait_until

pytestmark = pytest.mark.integration

RETRY_AFTER = 4
"""What every answer asks for: far more than the rig's 429 schedule (0.05 to 0.2 s)."""
WINDOW = 10.0


@pytest.fixture
def rig_partitions() -> int:
    return 1


def _rate_limited_requests(rig: ForwardingRig) -> int:
    requests = rig.emulator.client.stats()["requests"].get("track", {})
    return int(requests.get("429", 0))


def test_rounds_wait_at_least_the_retry_after_of_the_last_answer(rig: ForwardingRig) -> None:
    rig.produce_events(20)
    rig.emulator.client.fail_fraction(1.0, statuses=(429,), retry_after=RETRY_AFTER)
    # A retry budget shorter than the Retry-After: the client gives up after each first
    # attempt, so every wait between two requests is the forwarder's, between rounds.
    config = rig.write_config({"shutdown_deadline": 2.0}, http={"retry_budget": 1.0})
    in_window, delays, stderr = rig.rate_limited_rounds(config, WINDOW)

    # Waits of at least 4 s: 2 more requests in 10 s (3 allows for clocks); on the 429
    # schedule alone it was dozens.
    assert 1 <= in_window <= 3, f"{in_window} requests in {WINDOW:.0f}s\n{stderr}"
    assert delays, stderr
    assert min(delays) >= RETRY_AFTER, delays


def test_a_stop_ends_a_long_retry_after_wait_at_the_shutdown_deadline(
    rig: ForwardingRig,
) -> None:
    """A ``Retry-After`` longer than the 429 schedule's cap (60 s) is waited in full, as the
    client's retries would, but a stop still ends the wait at ``shutdown_deadline``."""
    rig.produce_events(20)
    rig.emulator.client.fail_fraction(1.0, statuses=(429,), retry_after=600)
    config = rig.write_config({"shutdown_deadline": 2.0}, http={"retry_budget": 1.0})
    process = rig.start(config)
    wait_until(lambda: _rate_limited_requests(rig) >= 1, 60)
    time.sleep(2.0)  # the round has ended by now: the forwarder is waiting
    stopped_at = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    took = time.monotonic() - stopped_at

    assert process.returncode == 0, stderr
    assert _rate_limited_requests(rig) == 1, "no request before the 600 s were over"
    assert re.search(r"not delivered .*; trying again in 600\.0s", stderr), stderr
    # 2 s of deadline, then at most 1 s for the commit, 0.5 s for the lag and 1 s to leave.
    assert took < 2.0 + 2.5 + 2.0, f"{took:.1f}s\n{stderr}"
    assert rig.committed() == {0: None}
