"""After a 429 the forwarder's own delivery rounds back off on the 429 schedule, against the
real broker and the emulator.

docs/forwarder.md, *Backpressure without rebalances*: on 429 the batch is resent "with
exponential backoff and jitter (Mixpanel's advice for 429: from 2 s up to 60 s)", and records
still undelivered after the HTTP retry budget are put back and tried again. The rounds that
try them again waited on the schedule of 5xx and network errors (``backoff_base`` up to
``backoff_cap``) whatever the failure was: a Mixpanel rate-limiting the project was sent the
same batch again within a fraction of a second, round after round.
"""

from __future__ import annotations

import pytest

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration

RATE_LIMIT_BASE = 4.0
"""The 429 schedule's first step: the first wait between rounds is 2 to 4 s, then 4 to 8 s."""
WINDOW = 12.0


def test_rounds_after_a_429_wait_on_the_rate_limit_schedule(rig: ForwardingRig) -> None:
    rig.produce_events(20)
    rig.emulator.client.fail_fraction(1.0, statuses=(429,))
    # The rig's other waits are 0.05 to 0.2 s; the retry budget is too short for even one
    # 429 wait inside the client, so every wait after a 429 is the forwarder's, between rounds.
    config = rig.write_config(
        {"shutdown_deadline": 2.0},  # the stop is only to exit 0, not waited out at 10 s
        http={"rate_limit_base": RATE_LIMIT_BASE, "rate_limit_cap": 8.0, "retry_budget": 0.5},
    )
    in_window, delays, stderr = rig.rate_limited_rounds(config, WINDOW)

    # Waits of at least 2, 4 and 4 s: at most 3 more requests in 12 s (5 allows for clocks);
    # on the 5xx schedule (at most 0.2 s) it was dozens.
    assert 1 <= in_window <= 5, f"{in_window} requests in {WINDOW:.0f}s\n{stderr}"
    assert delays, stderr
    assert min(delays) >= RATE_LIMIT_BASE / 2, delays
