"""``--until-caught-up`` exits only once the group committed the offset after the last record
that was in the topic, against the real broker and the emulator: not one record short when the
last one has not even been read yet.

Each poll hands out one record (``max_poll_records = 1``) and each delivery takes longer than
the interval between two catch-up checks, so a check runs right after the first record's
commit, while the second is still unread.
"""

from __future__ import annotations

import pytest

from .conftest import FAST_GROUP, ForwardingRig

pytestmark = pytest.mark.integration


@pytest.fixture
def rig_partitions() -> int:
    return 1


def test_the_last_record_is_delivered_and_committed_before_the_exit(rig: ForwardingRig) -> None:
    produced = rig.produce_events(2)
    rig.emulator.client.set_latency(0.8)  # longer than CAUGHT_UP_CHECK_INTERVAL (0.5 s)
    config = rig.write_config(
        {"consumer": {**FAST_GROUP, "max_poll_records": 1}, "batch_records": 1}
    )

    code, stderr = rig.run_until_caught_up(config)

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(produced)
    assert rig.committed() == {0: 2}
