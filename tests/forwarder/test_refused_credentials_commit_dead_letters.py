"""A 401/403 stops the forwarder, but a record Mixpanel rejected earlier in the same call is
dead-lettered and committed past first, against the real broker and the emulator: left
uncommitted, the restart would read it again and dead-letter it a second time.

One record per request (``max_batch_records = 1``): the batch's first request is answered 400
(its record rejected), the second 401; the third record is never sent.
"""

from __future__ import annotations

import pytest

from mixpanel_core.forwarder.dead_letters import PREFIX

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration


@pytest.fixture
def rig_partitions() -> int:
    """One partition: the records' offsets are the order they were produced and sent in."""
    return 1


def test_a_record_rejected_before_a_401_in_the_same_call_is_dead_lettered_and_committed(
    rig: ForwardingRig,
) -> None:
    rig.produce_events(3)
    emulator = rig.emulator.client
    emulator.fail_next(1, 400, endpoints=["track"])
    emulator.fail_next(1, 401, endpoints=["track"])
    # A linger long enough for the three records to go out in one call, however they are polled.
    config = rig.write_config({"linger": 1.0}, http={"max_batch_records": 1})

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    assert "Mixpanel refused" in stderr, stderr
    assert emulator.stats()["requests"]["track"] == {"400": 1, "401": 1}, "the third never went"
    [letter] = rig.dead_letters(1)
    assert dict(letter.headers)[PREFIX + "source-offset"] == b"0"
    assert rig.committed() == {0: 1}, "past the dead-lettered record, not past the refused one"
