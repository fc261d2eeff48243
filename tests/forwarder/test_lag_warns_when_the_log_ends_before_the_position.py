"""A partition whose log ends before the forwarder's position is said, not shown as lag 0.

Found with a broker restarted empty under a running forwarder (the same state a topic deleted
and created again gives): the forwarder went on from the offsets it had reached, past records
the new log held below them, and its progress line said ``lag=0`` for good. What it cannot
see it cannot deliver, but the operator must be told: the lag measure now warns, once each
time it sees such a log, naming the partition, its end and the position.

Broker-free: the measure reads only the consumer's assignment, high watermarks and listed ends,
given here as a broker with a replaced log answers them.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mixpanel_core.forwarder.lag import LagMeter
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.kafka.client_library import kafka_python

TopicPartition = kafka_python().TopicPartition
REPLACED = TopicPartition("events", 0)
HEALTHY = TopicPartition("events", 1)


class Consumer:
    """``ends``: where each partition's log ends, as fetches answer it (``None``: not fetched
    yet) and as the broker lists it (``listed``, by default the same)."""

    def __init__(self, ends: dict[Any, int | None], listed: dict[Any, int] | None = None) -> None:
        self.ends = ends
        self.listed = listed

    def assignment(self) -> set[Any]:
        return set(self.ends)

    def highwater(self, partition: Any) -> int | None:
        return self.ends[partition]

    def end_offsets(self, partitions: list[Any], timeout_ms: int) -> dict[Any, int | None]:
        listed = self.ends if self.listed is None else self.listed
        return {p: listed[p] for p in partitions}


class Tracker:
    def __init__(self, positions: dict[Any, int]) -> None:
        self._positions = positions

    def positions(self) -> dict[Any, int]:
        return dict(self._positions)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_log_ending_before_the_position_is_warned_of_once_each_time_it_is_seen(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = Consumer({REPLACED: 78, HEALTHY: 120})
    tracker = Tracker({REPLACED: 90, HEALTHY: 100})
    metrics = ForwarderMetrics()
    meter = LagMeter(consumer, tracker, metrics)
    caplog.set_level(logging.WARNING, logger="mixpanel_core.forwarder")

    meter.measure(1.0)
    meter.measure(1.0)

    [warning] = warnings(caplog)  # once, not at every measure
    assert "events[0] ends at offset 78, before offset 90" in warning
    assert "deleted and created again" in warning
    assert "reset the group's offsets" in warning
    assert metrics.lag == {("events", 0): 0, ("events", 1): 20}

    consumer.ends[REPLACED] = 95  # the new log grew past the position: no longer seen
    meter.measure(1.0)
    assert len(warnings(caplog)) == 1
    consumer.ends[REPLACED] = 10  # replaced again
    meter.measure(1.0)
    assert len(warnings(caplog)) == 2


def test_no_warning_for_a_partition_done_up_to_its_end(caplog: pytest.LogCaptureFixture) -> None:
    consumer = Consumer({REPLACED: 90, HEALTHY: 120})
    meter = LagMeter(consumer, Tracker({REPLACED: 90, HEALTHY: 100}), ForwarderMetrics())
    caplog.set_level(logging.WARNING, logger="mixpanel_core.forwarder")
    meter.measure(1.0)
    assert warnings(caplog) == []


def test_a_short_listed_end_before_the_first_fetch_is_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Tansu lists a log's end as the first offset of its last batch plus one: before the
    # first fetch of a restarted forwarder, that is below the group's commit.
    consumer = Consumer({REPLACED: None}, listed={REPLACED: 101})
    meter = LagMeter(consumer, Tracker({REPLACED: 120}), ForwarderMetrics())
    caplog.set_level(logging.WARNING, logger="mixpanel_core.forwarder")
    meter.measure(1.0)
    assert warnings(caplog) == []
