"""How far behind the forwarder is: each assigned partition's lag, measured on the loop's thread,
and the log ends of the topic that ``run(until_caught_up=True)`` waits for the group to commit.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mixpanel_core.forwarder.config import ForwarderError
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.forwarder.offsets import OffsetTracker
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.log_ends import LogEnds

logger = logging.getLogger("mixpanel_core.forwarder")

LAG_INTERVAL = 1.0
LOG_ENDS_TIMEOUT = 0.5
"""Longest the lag measure waits for the broker to list the log ends: it runs on the loop's
thread, every ``LAG_INTERVAL``, and must not hold deliveries, polls or the exit."""


class LagMeter:
    """Measures each assigned partition's lag into ``metrics.lag``, on the loop's thread.

    ``consumer`` is the forwarder's subscribed ``KafkaConsumer``; ``tracker`` says how far each
    partition is done. A partition assigned but not read from since (paused before its first
    fetch, taken over while the forwarder backed off, or with nothing new) has no progress in
    ``tracker``: its lag counts from the group's committed offset, or from the partition's
    first offset when the group committed none, asked from the broker once per assignment.
    """

    def __init__(self, consumer: Any, tracker: OffsetTracker, metrics: ForwarderMetrics) -> None:
        self._consumer = consumer
        self._tracker = tracker
        self._metrics = metrics
        self._measured_at = 0.0
        self._log_ends: dict[Any, int] = {}
        """Each assigned partition's end, as the broker last listed it (see ``measure``)."""
        self._starts: dict[Any, int] = {}
        """Where each assigned partition not read from yet starts: the group's committed
        offset, or its first offset; asked once per assignment (see ``assignment_changed``)."""
        self._ending_before_position: set[Any] = set()
        """The partitions whose log was last seen ending before their position (warned of)."""

    def assignment_changed(self) -> None:
        """The assignment changed: the starts asked before may be stale (another member may
        have committed meanwhile), so they are asked again."""
        self._starts = {}

    def measure_when_due(self, now: float, shutdown_by: float | None) -> None:
        """Measure, at most every ``LAG_INTERVAL``; ``shutdown_by`` is the shutdown deadline
        once a stop was requested."""
        if now - self._measured_at >= LAG_INTERVAL:
            self._measured_at = now
            # Once a stop was requested, asking the broker must not hold the waits past the
            # shutdown deadline; the exit measures the lag once more in any case.
            self.measure(
                LOG_ENDS_TIMEOUT
                if shutdown_by is None
                else min(LOG_ENDS_TIMEOUT, shutdown_by - now)
            )

    def measure(self, ask_for: float) -> None:
        """Each assigned partition's records between its committable offset and its end.

        The end is the larger of the high watermark of the last fetch and the end the broker
        lists (``end_offsets``). The fetch alone goes stale for a paused partition, which is
        not fetched: while Mixpanel fails, the lag would stay where it was when the
        partitions were paused however much the topic grew. The listing alone may fall
        short on some Kafka-compatible brokers (see ``LogEnds``). A partition not read from
        since it was assigned counts from where it starts (see the class). The broker is
        given ``ask_for`` seconds in all to answer (none left: what it answered last is used).
        """
        consumer = self._consumer
        assignment = consumer.assignment()
        until = time.monotonic() + ask_for
        if assignment and ask_for > 0:
            self._list_log_ends(assignment, ask_for)
        positions = self._tracker.positions()
        unread = [p for p in assignment if p not in positions and p not in self._starts]
        if unread:
            self._ask_starts(unread, until - time.monotonic())
        lag = {}
        for partition in assignment:
            fetched = consumer.highwater(partition)
            ends = (fetched, self._log_ends.get(partition))
            end = max((e for e in ends if e is not None), default=None)
            done = positions.get(partition, self._starts.get(partition))
            if end is None or done is None:
                continue
            # Only the end a fetch answered: the listed one falls short on some brokers
            # (see ``LogEnds``), before the first fetch after every restart on Tansu.
            if fetched is not None and fetched < done:
                self._warn_log_ends_before(partition, fetched, done)
            else:
                self._ending_before_position.discard(partition)
            lag[(partition.topic, partition.partition)] = max(0, end - done)
        self._metrics.lag = lag

    def _warn_log_ends_before(self, partition: Any, end: int, done: int) -> None:
        """A log that ends before the position reached was replaced or cut short under the
        forwarder: what was written to it since sits at offsets it counts as done, which it
        never reads. Said once for each time it is seen, not read as a lag of 0 in silence."""
        if partition in self._ending_before_position:
            return
        self._ending_before_position.add(partition)
        logger.warning(
            "%s[%d] ends at offset %d, before offset %d, which this forwarder had reached: the "
            "topic was deleted and created again, or its log cut short (a broker that lost its "
            "data, an unclean leader election). Records written to it since may be skipped: "
            "check the topic, and to read it again from its start, stop the forwarders and "
            "reset the group's offsets (kafka-consumer-groups --reset-offsets --to-earliest)",
            partition.topic,
            partition.partition,
            end,
            done,
        )

    def _list_log_ends(self, partitions: Any, timeout: float) -> None:
        """Ask the broker for the ends of ``partitions`` within ``timeout`` seconds; on any
        failure keep the ends listed last (a measure never stops the forwarder)."""
        try:
            listed = self._consumer.end_offsets(
                list(partitions), timeout_ms=max(1, int(timeout * 1000))
            )
        except Exception as exc:
            logger.debug("listing the log ends for the lag: %s: %s", type(exc).__name__, exc)
            return
        self._log_ends = dict(listed)

    def _ask_starts(self, partitions: list[Any], timeout: float) -> None:
        """Ask where ``partitions`` start (see ``_starts``) within ``timeout`` seconds; what
        is not answered in time is asked again at the next measure."""
        if timeout <= 0:
            return
        until = time.monotonic() + timeout
        consumer = self._consumer
        uncommitted = []
        try:
            for partition in sorted(partitions):
                left = until - time.monotonic()
                if left <= 0:
                    return
                committed = consumer.committed(partition, timeout_ms=max(1, int(left * 1000)))
                if committed is None:
                    uncommitted.append(partition)
                else:
                    self._starts[partition] = committed
            left = until - time.monotonic()
            if uncommitted and left > 0:
                first = consumer.beginning_offsets(uncommitted, timeout_ms=max(1, int(left * 1000)))
                self._starts.update(first)
        except Exception as exc:
            logger.debug(
                "asking where partitions start, for the lag: %s: %s", type(exc).__name__, exc
            )


def topic_log_ends(reader: Any, topic: str) -> LogEnds:
    """The ends of every partition of ``topic``, as ``reader`` (a consumer of the group that
    never subscribes) lists them: what ``run(until_caught_up=True)`` waits for the group to
    commit."""
    kafka = kafka_python()
    numbers = reader.partitions_for_topic(topic) or ()
    partitions = [kafka.TopicPartition(topic, n) for n in sorted(numbers)]
    if not partitions:
        raise ForwarderError(f"topic {topic!r} does not exist or has no partitions")
    return LogEnds(reader.end_offsets(partitions))
