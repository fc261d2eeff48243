"""The lag of partitions the forwarder owns but has not read since they were assigned, against the
real broker and the emulator.

docs/forwarder.md, *Observing it*: ``mixpanel_forwarder_partition_lag`` counts the records
between the last committable offset and the partition's end, also what was produced while the
partitions are paused. A partition assigned while the forwarder was backing off (paused before
its first fetch), or with nothing new to read, had no series at all: the gauge, and the
``lag=`` of the exit line, left out everything waiting in it.
"""

from __future__ import annotations

import re
import signal
import urllib.request

import pytest

from .conftest import FAST_GROUP, ForwardingRig, free_port, wait_until

pytestmark = pytest.mark.integration

PRODUCED = 60


def _produce_one_batch_each(rig: ForwardingRig, count: int) -> None:
    """``count`` /track events, each stored alone: some Kafka-compatible brokers (the embedded
    test broker) list the end of a partition as the first offset of its last batch, plus one."""
    client = rig.client()
    try:
        for i in range(count):
            client.track(f"user-{i % 50}", "Played", {"i": i})
            assert client.flush(30) == []
    finally:
        client.close(30)


def _lag_series(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        partition: float(value)
        for partition, value in re.findall(
            r'^mixpanel_forwarder_partition_lag\{.*partition="(\d+)"\} (\S+)$', text, re.M
        )
    }


def test_partitions_paused_before_their_first_fetch_count_in_the_lag(rig: ForwardingRig) -> None:
    """One record per poll and per batch: the forwarder reads one record, Mixpanel fails it,
    and from then on every partition stays paused while it is retried. The partitions it never
    read from lag by everything in them (nothing is committed)."""
    _produce_one_batch_each(rig, PRODUCED)
    rig.emulator.client.fail_fraction(1.0, statuses=(500,))
    port = free_port()
    config = rig.write_config(
        {
            "metrics_port": port,
            "batch_records": 1,
            "shutdown_deadline": 2.0,
            "consumer": {
                **FAST_GROUP,
                "max_poll_records": 1,
            },
        },
        http={"retry_budget": 0.5},
    )
    process = rig.start(config)
    retried = "mixpanel_forwarder_records_retried_total"
    wait_until(lambda: (rig.metric(port, retried) or 0) >= 1, 60)  # paused by now
    consumed = rig.metric(port, "mixpanel_forwarder_records_consumed_total")

    wait_until(lambda: (rig.lag(port) or 0) >= PRODUCED, 20)
    series = _lag_series(port)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    assert consumed == 1, "one record read: the other partitions were never fetched"
    assert sorted(series) == ["0", "1", "2"], series
    assert sum(series.values()) == PRODUCED, series
    assert set(rig.committed().values()) == {None}
    [closing] = re.findall(r"forwarder stopped: .* lag=(\d+)", stderr)
    assert int(closing) == PRODUCED, stderr


def test_a_caught_up_forwarder_serves_a_lag_of_zero_for_every_partition(
    rig: ForwardingRig,
) -> None:
    """Nothing new to read: a series of 0 per partition (from the group's commit), not no
    series at all."""
    _produce_one_batch_each(rig, PRODUCED)
    returncode, stderr = rig.run_until_caught_up(rig.write_config())
    assert returncode == 0, stderr
    assert sum(offset or 0 for offset in rig.committed().values()) == PRODUCED

    port = free_port()
    process = rig.start(rig.write_config({"metrics_port": port, "shutdown_deadline": 2.0}))
    wait_until(lambda: len(_lag_series(port)) == 3 if rig.lag(port) is not None else False, 30)
    assert sum(_lag_series(port).values()) == 0
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "partitions revoked: none" not in stderr
    [closing] = re.findall(r"forwarder stopped: .* lag=(\d+)", stderr)
    assert int(closing) == 0, stderr
