"""``dead-letter-attempts`` counts every request made for the record, against the real broker and
the emulator: also those of earlier rounds that ran out of the HTTP client's retries and were put
back by the forwarder, not only the round that ended in the rejection."""

from __future__ import annotations

import pytest

from mixpanel_core.forwarder.dead_letters import PREFIX

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration


@pytest.fixture
def rig_partitions() -> int:
    return 1


def test_the_attempts_header_counts_the_requests_of_every_delivery_round(
    rig: ForwardingRig,
) -> None:
    rig.produce_rejected_import()  # strict /import refuses it (distinct_id "anonymous")
    # max_retries = 1: two requests a round. Rounds one and two get 503s and the record is put
    # back each time; round three gets the 400 that dead-letters it.
    rig.emulator.client.fail_next(4, status=503, endpoints=["import"])
    config = rig.write_config(plugins=[], http={"max_retries": 1})

    code, stderr = rig.run_until_caught_up(config)

    assert code == 0, stderr
    assert rig.emulator.client.stats()["requests"]["import"] == {"503": 4, "400": 1}
    [letter] = rig.dead_letters(1)
    why = dict(letter.headers)
    assert why[PREFIX + "http-status"] == b"400"
    assert why[PREFIX + "attempts"] == b"5", "4 requests answered 503, then the 400"
