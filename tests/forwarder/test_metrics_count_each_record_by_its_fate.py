"""Each counter counts what its help text says, against the real broker and the emulator: a run
over records with every fate (accepted, poison, rejected after a retried request) leaves each
counter at the number of records of that fate, and the Prometheus text says so under the
metric names the docs give."""

from __future__ import annotations

import pytest

from mixpanel_core.config import load_config
from mixpanel_core.forwarder.build import build_forwarder
from mixpanel_core.kafka import headers

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration


@pytest.fixture
def rig_partitions() -> int:
    """One partition, one forwarder: every record is read once."""
    return 1


def test_every_counter_counts_the_records_of_its_fate(rig: ForwardingRig) -> None:
    rig.produce_events(3)  # accepted
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])  # poison
    rig.produce_rejected_import()  # rejected by strict /import (distinct_id "anonymous")
    # The import's first request gets a 503 and is sent again (the one record resent), then
    # the 400 that dead-letters it.
    rig.emulator.client.fail_next(1, status=503, endpoints=["import"])
    config = rig.write_config(plugins=[], http={"max_retries": 1})
    forwarder, client = build_forwarder(load_config(config), until_caught_up=True)
    try:
        forwarder.run(until_caught_up=True)
    finally:
        client.close()

    metrics = forwarder.metrics
    assert metrics.counters() == {
        "consumed": 5,
        "delivered": 3,
        "rejected": 1,
        "poison": 1,
        "dead_lettered": 2,
        "retried": 1,
        "commits": metrics.commits,
    }
    assert metrics.commits >= 1, "the group's offset moved to the end"
    assert rig.committed() == {0: 5}
    lines = set(metrics.prometheus().splitlines())
    expected = {
        "mixpanel_forwarder_records_consumed_total 5",
        "mixpanel_forwarder_records_delivered_total 3",
        "mixpanel_forwarder_records_rejected_total 1",
        "mixpanel_forwarder_records_poison_total 1",
        "mixpanel_forwarder_records_dead_lettered_total 2",
        "mixpanel_forwarder_records_retried_total 1",
        f"mixpanel_forwarder_commits_total {metrics.commits}",
    }
    assert expected <= lines, sorted(expected - lines)
