"""``IdleWatch``: a forwarder that holds no partition says so when no one else delivers either.

A forwarder without partitions has no lag of its own to show, so a group in which no member
delivers (stuck in a rebalance that never settles, or whose partitions are held by members that
no longer commit) would look healthy from every idle member: their gauges say lag 0. While it
holds no partition, the watch reads the group's committed offsets and the topic's ends every
``every`` seconds; when the commits did not move since the previous read and records wait past
them, it logs a WARNING and counts the records waiting in ``metrics.stalled_group_lag``.
"""

from __future__ import annotations

import logging
from typing import Any

from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.kafka.client_library import kafka_python

logger = logging.getLogger("mixpanel_core.forwarder")

ASK_TIMEOUT = 0.5
"""Longest each read of the broker waits: it runs on the loop's thread (which has nothing to
deliver while it holds no partition, but must keep polling to stay in its group)."""


class IdleWatch:
    """See the module. ``reader`` is a consumer of the group that never subscribes (asking the
    subscribed consumer disturbs its own join); ``every`` is ``[forwarder] idle_warning``."""

    def __init__(
        self, reader: Any, topic: str, group_id: str, every: float, metrics: ForwarderMetrics
    ) -> None:
        self._reader = reader
        self._topic = topic
        self._group_id = group_id
        self._every = every
        self._metrics = metrics
        self._idle_since: float | None = None
        self._read_at = 0.0
        self._commits: dict[Any, int] | None = None
        """The group's commits as last read while idle; ``None``: not read this idle spell."""

    def tick(self, now: float, holds_partitions: bool) -> None:
        """Called from the loop's turns; reads the broker at most every ``every`` seconds."""
        if not self._every or self._reader is None:
            return
        if holds_partitions:
            self._idle_since = self._commits = None
            self._metrics.stalled_group_lag = 0
            return
        if self._idle_since is None:
            self._idle_since = self._read_at = now
            return
        if now - self._read_at < self._every:
            return
        self._read_at = now
        read = self._read()
        if read is None:
            return
        commits, ends = read
        waiting = sum(max(0, end - commits[p]) for p, end in ends.items() if p in commits)
        stood_still = self._commits is not None and commits == self._commits
        self._commits = commits
        self._metrics.stalled_group_lag = waiting if stood_still else 0
        if stood_still and waiting:
            logger.warning(
                "this forwarder has held no partition of %s for %.0f s, and group %s committed "
                "nothing in the last %.0f s while %d record(s) wait past its commits: no member "
                "of the group is delivering (a rebalance that does not settle, or members that "
                "hold partitions without committing); the log lines of kafka-python say why",
                self._topic,
                now - self._idle_since,
                self._group_id,
                self._every,
                waiting,
            )

    def _read(self) -> tuple[dict[Any, int], dict[Any, int]] | None:
        """The group's committed offsets (a partition's first offset where it committed none)
        and the topic's ends, or ``None`` when the broker did not answer in time (read again at
        the next check)."""
        kafka = kafka_python()
        timeout_ms = int(ASK_TIMEOUT * 1000)
        try:
            numbers = self._reader.partitions_for_topic(self._topic) or ()
            partitions = [kafka.TopicPartition(self._topic, n) for n in sorted(numbers)]
            ends = self._reader.end_offsets(partitions, timeout_ms=timeout_ms)
            commits = {p: self._reader.committed(p, timeout_ms=timeout_ms) for p in partitions}
            never = [p for p, offset in commits.items() if offset is None]
            if never:
                commits.update(self._reader.beginning_offsets(never, timeout_ms=timeout_ms))
        except Exception as exc:
            logger.debug("reading the group's commits while idle: %s: %s", type(exc).__name__, exc)
            return None
        return commits, dict(ends)
