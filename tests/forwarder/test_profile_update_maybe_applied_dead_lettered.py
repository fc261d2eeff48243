"""A profile update whose request may have reached Mixpanel unanswered (the connection lost
after Mixpanel applied it) is dead-lettered with a reason that says so, not sent again every
round: review F1 saw one ``$add`` applied 31 times in 10 s. Events in the same position are
sent again, which Mixpanel counts once by ``$insert_id``."""

from __future__ import annotations

import pytest

from mixpanel_core.emulator.client import EmulatorClient
from mixpanel_core.forwarder.dead_letters import PREFIX
from mixpanel_core.ingestion.call import MAYBE_APPLIED

from .conftest import ForwardingRig, error_line

pytestmark = pytest.mark.integration


@pytest.fixture
def rig_partitions() -> int:
    return 1


def _five_updates_the_first_request_of_which_is_applied_unanswered(
    rig: ForwardingRig,
) -> EmulatorClient:
    client = rig.client()
    for i in range(5):
        client.people_increment(f"user-{i}", {"credits": 10})
    assert client.close(30) == []
    faults = rig.emulator.client
    faults.drop_next(1, endpoints=["engage"], after_applying=True)
    return faults


def test_a_profile_update_mixpanel_may_have_applied_is_dead_lettered_not_resent(
    rig: ForwardingRig,
) -> None:
    faults = _five_updates_the_first_request_of_which_is_applied_unanswered(rig)
    config = rig.write_config(plugins=[], http={"max_retries": 0})

    code, stderr = rig.run_until_caught_up(config)

    assert code == 0, stderr
    assert len(faults.records("engage")) == 5  # applied once, by the request left unanswered
    assert faults.stats()["requests"]["engage"] == {"dropped": 1}  # and never sent again
    letters = rig.dead_letters(5)
    reasons = {dict(letter.headers)[PREFIX + "reason"].decode() for letter in letters}
    assert len(reasons) == 1
    assert reasons.pop().endswith(MAYBE_APPLIED), stderr


def test_under_on_poison_stop_it_is_a_stop_that_says_how_to_check(rig: ForwardingRig) -> None:
    """Under ``on_poison = "stop"`` such updates were put back and sent again every round:
    against a Mixpanel slower than ``read_timeout``, review R11 saw one ``$add`` applied 42
    times in 10 s. (Before that, review R10 found them stopped on with advice meant for records
    Mixpanel rejected: "fix it", and a skip "loses nothing", which lost updates Mixpanel had
    not applied.) It is a stop now, and its advice says to look at the profiles first."""
    faults = _five_updates_the_first_request_of_which_is_applied_unanswered(rig)
    config = rig.stop_config(http={"max_retries": 0}, linger=0.2)

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    assert len(faults.records("engage")) == 5  # applied once, by the request left unanswered
    assert faults.stats()["requests"]["engage"] == {"dropped": 1}, stderr  # never sent again
    error = error_line(stderr)
    where = f"{rig.topic}[0]"
    assert f"stopping at {where}@0 (delivery)" in error, error
    assert error.count(MAYBE_APPLIED) == 1, error
    assert f"; 4 more records of {where}, up to offset 4, sent in the same requests, " in error
    assert (
        "Mixpanel may or may not have applied them: look at the profiles they update. If "
        f"applied, skip them by committing offset 5 on {where}" in error
    ), error
    assert "status 0" not in error, error
    assert "If not, start the forwarder again: it sends them again." in error, error
    assert rig.committed() == {0: None}
