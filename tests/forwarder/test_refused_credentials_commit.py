"""A 401/403 stops the forwarder, but what Mixpanel accepted before it is committed first: a
restart sends only the rest. Against the real broker and the emulator, over real sockets."""

from __future__ import annotations

import collections
import signal
import uuid
from collections.abc import Callable

import pytest

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration

RECORDS = 6
PER_REQUEST = 2
"""``max_batch_records``: the forwarder's one batch of 6 goes out as three requests of 2."""


@pytest.fixture
def rig_partitions() -> int:
    """One partition: the records' offsets are the order they were produced and sent in."""
    return 1


def _events(rig: ForwardingRig) -> tuple[str, Callable[[dict[str, object]], str]]:
    rig.produce_events(RECORDS)
    return "track", lambda record: str(record["properties"]["$insert_id"])  # type: ignore[index]


def _people_increments(rig: ForwardingRig) -> tuple[str, Callable[[dict[str, object]], str]]:
    """``$add`` updates: Mixpanel does not deduplicate them, a resend counts twice."""
    client = rig.client()
    for _ in range(RECORDS):
        client.people_increment(f"user-{uuid.uuid4().hex[:8]}", {"visits": 1})
    assert client.close(30) == []
    return "engage", lambda record: str(record["$distinct_id"])


@pytest.mark.parametrize("produce", [_events, _people_increments], ids=["track", "engage"])
def test_a_401_on_a_later_request_of_the_batch_commits_what_earlier_ones_delivered(
    rig: ForwardingRig,
    produce: Callable[[ForwardingRig], tuple[str, Callable[[dict[str, object]], str]]],
) -> None:
    """The batch's first request is accepted, its second is refused with 401: the forwarder
    exits 1, having committed the first two records. The next forwarder (credentials fixed)
    sends the other four only: every record reaches Mixpanel exactly once."""
    endpoint, key = produce(rig)
    config = rig.write_config(http={"max_batch_records": PER_REQUEST})
    emulator = rig.emulator.client
    # The emulator decides a request's fault after its latency: the second request is still
    # inside that latency when the first one's records show up, so the 401 below reaches it.
    emulator.set_latency(1.5)
    process = rig.start(config)
    emulator.wait_for_records(PER_REQUEST, endpoint, timeout=60)
    emulator.fail_next(1, 401, endpoints=[endpoint])
    emulator.set_latency(0)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 1, stderr
    assert "Mixpanel refused" in stderr, stderr
    assert emulator.stats()["requests"][endpoint] == {"200": 1, "401": 1}, "the third never went"
    first = [key(r) for r in emulator.records(endpoint)]
    assert len(first) == PER_REQUEST
    assert rig.committed() == {0: PER_REQUEST}, stderr

    # Not with --until-caught-up: the embedded broker reports the end of this topic as 1 (the
    # last batch's base offset + 1), so a stop comes by SIGTERM once everything arrived.
    process = rig.start(config)
    emulator.wait_for_records(RECORDS, endpoint, timeout=60)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    counts = collections.Counter(key(r) for r in emulator.records(endpoint))
    assert len(counts) == RECORDS
    assert set(counts.values()) == {1}, f"sent twice: {[k for k, n in counts.items() if n > 1]}"
    assert rig.committed() == {0: RECORDS}
