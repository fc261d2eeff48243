"""What the forwarder logs about retries and rebalances, against the real broker and the emulator.

A 429 or a 500 that the ingestion client retried, and that then went through, left no line at
all in the forwarder's log: an operator saw Mixpanel failing only once a whole round ran out of
retries. Now a round that needed retries logs a WARNING saying how many requests were retried
and why, at most every few seconds. And every start logged "partitions revoked: none" for the
revocation of nothing that begins every first join.
"""

from __future__ import annotations

import re
import time

import pytest

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration

RETRY_LOG_INTERVAL = 5.0
"""``mixpanel_core.forwarder.round_reports.RETRY_LOG_INTERVAL``."""


def test_requests_retried_inside_a_round_are_logged_rate_limited(rig: ForwardingRig) -> None:
    produced = 200
    rig.produce_events(produced)
    # Half the requests fail, in many small rounds: each round that needed a retry or more
    # could log a line, but no more than one is logged every RETRY_LOG_INTERVAL seconds.
    rig.emulator.client.fail_fraction(0.5, statuses=(429,), seed=7)
    started = time.monotonic()
    returncode, stderr = rig.run_until_caught_up(rig.write_config({"batch_records": 5}))
    took = time.monotonic() - started

    assert returncode == 0, stderr
    assert len(set(rig.delivered_insert_ids())) == produced
    lines = re.findall(
        r"WARNING .*: (\d+) request\(s\) to Mixpanel retried in (\d+) delivery round\(s\) "
        r"\(first: (.*)\)",
        stderr,
    )
    assert lines, stderr
    assert len(lines) <= 1 + took / RETRY_LOG_INTERVAL, lines
    assert all(int(retried) >= 1 and int(rounds) >= 1 for retried, rounds, _ in lines)
    assert lines[0][2] == "HTTP 429", lines
    assert "partitions revoked: none" not in stderr
