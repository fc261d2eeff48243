"""``IdleWatch``: a forwarder that holds no partition says so when no one else delivers either.

A forwarder without partitions has no lag of its own to show, so a group in which no member
delivers (stuck in a rebalance that never settles, or whose partitions are held by members that
no longer commit) would look healthy from every idle member: their gauges say lag 0. While it
holds no partition, the watch has the group's committed offsets and the topic's ends read every
``every`` seconds; when the commits did not move since the previous read and records wait past
them, it logs a WARNING and counts the records waiting in ``metrics.stalled_group_lag``.

The reads are made on a thread of their own, by a consumer of the group that only that thread
uses and that never subscribes (asking the subscribed consumer disturbs its own join): one of
them, kafka-python's ``partitions_for_topic`` for a topic it does not know yet, waits for the
broker without any timeout, and the loop's thread must keep polling (to stay in its group) and
stop when told to, whatever the broker does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.kafka.client_library import kafka_python

logger = logging.getLogger("mixpanel_core.forwarder")

ASK_TIMEOUT = 0.5
"""Longest each bounded read of the broker (ends, commits) waits."""

_Read = tuple[float, dict[Any, int], dict[Any, int]]
"""When a read ended, the group's commits and the topic's ends it found."""


class IdleWatch:
    """See the module. ``reader`` builds the watch's consumer of the group (on the watch's
    thread, at its first read); ``every`` is ``[forwarder] idle_warning`` (0: never)."""

    def __init__(
        self,
        reader: Callable[[], Any] | None,
        topic: str,
        group_id: str,
        every: float,
        metrics: ForwarderMetrics,
    ) -> None:
        self._reader = reader
        self._topic = topic
        self._group_id = group_id
        self._every = every
        self._metrics = metrics
        self._idle_since: float | None = None
        self._asked_at = 0.0
        self._previous: _Read | None = None
        """The last read of this idle spell, the one the next is compared with."""
        self._read: _Read | None = None
        """A read the thread made and the loop has not looked at yet."""
        self._ask = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def tick(self, now: float, holds_partitions: bool) -> None:
        """Called from the loop's turns: cheap, never waits for the broker."""
        if not self._every or self._reader is None:
            return
        if holds_partitions:
            self._idle_since = self._previous = None
            self._metrics.stalled_group_lag = 0
            return
        if self._idle_since is None:
            self._idle_since = self._asked_at = now
            self._read = None  # of an earlier idle spell
        read, self._read = self._read, None
        if read is not None:
            self._judge(now - self._idle_since, read)
        if now - self._asked_at >= self._every and not self._ask.is_set():
            self._asked_at = now
            self._start_thread()
            self._ask.set()

    def close(self) -> None:
        """End the thread (it closes its consumer); a read under way ends it first."""
        self._closed = True
        self._ask.set()

    def _judge(self, idle_for: float, read: _Read) -> None:
        read_at, commits, ends = read
        previous, self._previous = self._previous, read
        if previous is None or previous[1] != commits:
            self._metrics.stalled_group_lag = 0
            return
        waiting = sum(max(0, end - commits[p]) for p, end in ends.items() if p in commits)
        self._metrics.stalled_group_lag = waiting
        if waiting:
            logger.warning(
                "this forwarder has held no partition of %s for %.0f s, and group %s committed "
                "nothing in the last %.0f s while %d record(s) wait past its commits: no member "
                "of the group is delivering (a rebalance that does not settle, or members that "
                "hold partitions without committing); the log lines of kafka-python say why",
                self._topic,
                idle_for,
                self._group_id,
                read_at - previous[0],
                waiting,
            )

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="mixpanel-forwarder-idle-watch", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        assert self._reader is not None
        reader = None
        failed = False
        try:
            while True:
                self._ask.wait()
                if self._closed:
                    return
                try:
                    reader = reader or self._reader()
                    self._read = _read(reader, self._topic)
                    failed = False
                except Exception as exc:  # asked again at the next check
                    # Said once until a read succeeds: the warning cannot be given meanwhile.
                    (logger.debug if failed else logger.warning)(
                        "cannot read the group's commits for the idle warning (%s: %s); "
                        "trying again every %g s",
                        type(exc).__name__,
                        exc,
                        self._every,
                    )
                    failed = True
                self._ask.clear()
                # A close() during the read set the event this clear just cleared.
                if self._closed:
                    return
        finally:
            if reader is not None:
                try:
                    reader.close(autocommit=False, timeout_ms=int(ASK_TIMEOUT * 1000))
                except Exception as exc:
                    logger.debug("closing the idle watch's reader: %s", exc)


def _read(reader: Any, topic: str) -> _Read:
    """The group's committed offsets (a partition's first offset where it committed none)
    and the topic's ends."""
    kafka = kafka_python()
    timeout_ms = int(ASK_TIMEOUT * 1000)
    numbers = reader.partitions_for_topic(topic) or ()
    partitions = [kafka.TopicPartition(topic, n) for n in sorted(numbers)]
    ends = reader.end_offsets(partitions, timeout_ms=timeout_ms)
    committed = {p: reader.committed(p, timeout_ms=timeout_ms) for p in partitions}
    commits = {p: offset for p, offset in committed.items() if offset is not None}
    never = [p for p, offset in committed.items() if offset is None]
    if never:
        commits.update(reader.beginning_offsets(never, timeout_ms=timeout_ms))
    return time.monotonic(), commits, dict(ends)
