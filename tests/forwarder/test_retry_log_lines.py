"""What the forwarder logs about retries and rebalances, against the real broker and the emulator.

A 429 or a 500 that the ingestion client retried, and that then went through, left no line at
all in the forwarder's log: an operator saw Mixpanel failing only once a whole round ran out of
retries. Now the ingestion client logs retries as it does for every transport: a WARNING at
the first, then one a minute at most, with a count, and the count left at the close. And
every start logged "partitions revoked: none" for the revocation of nothing that begins every
first join.
"""

from __future__ import annotations

import re

import pytest

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration


def test_requests_retried_inside_a_round_are_logged_rate_limited(rig: ForwardingRig) -> None:
    produced = 200
    rig.produce_events(produced)
    # Half the requests fail, in many small rounds: the first retry is logged at once (by the
    # ingestion client, as for every transport), the others within the minute are counted
    # and said when the forwarder closes its client, so the lines add up to every retry.
    rig.emulator.client.fail_fraction(0.5, statuses=(429,), seed=7)
    returncode, stderr = rig.run_until_caught_up(rig.write_config({"batch_records": 5}))

    assert returncode == 0, stderr
    assert len(set(rig.delivered_insert_ids())) == produced
    first = re.findall(
        r"WARNING .*forwarder: retrying (\d+) record\(s\) to /track in [\d.]+s \(retry 1, .*\): "
        r"HTTP 429",
        stderr,
    )
    assert len(first) == 1, stderr
    more = re.findall(
        r"WARNING .*forwarder: (\d+) more retries to /track since the last line", stderr
    )
    refused = rig.emulator.client.stats()["requests"]["track"]["429"]
    assert 1 + sum(int(n) for n in more) == refused, stderr
    assert "partitions revoked: none" not in stderr
