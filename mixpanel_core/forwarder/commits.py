"""``OffsetCommitter``: commits the offsets that are done, within the time the broker is given.

A commit not answered in time is made again at the next commit, with the offsets done by
then; see ``shutdown_clock`` for how long each may wait.
"""

from __future__ import annotations

import logging
from typing import Any

from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.forwarder.offsets import OffsetTracker
from mixpanel_core.forwarder.shutdown_clock import ShutdownClock
from mixpanel_core.kafka.client_library import kafka_python

logger = logging.getLogger("mixpanel_core.forwarder")


class OffsetCommitter:
    """Commits what ``tracker`` says is done through ``consumer`` (a kafka-python
    ``KafkaConsumer``), bounded by ``shutdown`` (see ``ShutdownClock.commit_timeout_ms``)."""

    def __init__(
        self,
        consumer: Any,
        tracker: OffsetTracker,
        metrics: ForwarderMetrics,
        shutdown: ShutdownClock,
    ) -> None:
        self._consumer = consumer
        self._tracker = tracker
        self._metrics = metrics
        self._shutdown = shutdown
        kafka = kafka_python()
        self._offset_and_metadata = kafka.structs.OffsetAndMetadata
        self._kafka_error = kafka.errors.KafkaError
        self._kafka_timeout = kafka.errors.KafkaTimeoutError

    def commit(self) -> bool:
        """Commit what is done; ``False`` when the broker did not answer in the time given
        (a refusal, such as a rebalance's, is not that: a later commit may get through)."""
        offsets = self._tracker.to_commit()
        if not offsets:
            return True
        make = self._offset_and_metadata
        stopping = self._shutdown.by is not None
        timeout_ms = self._shutdown.commit_timeout_ms()
        try:
            self._consumer.commit(
                {tp: make(offset, "", -1) for tp, offset in offsets.items()}, timeout_ms=timeout_ms
            )
        except self._kafka_error as exc:
            if stopping:
                logger.warning(
                    "commit failed while stopping (%s; %.1fs allowed): the records done "
                    "since the last commit stay uncommitted, and the next owner of their "
                    "partitions delivers them again (at least once; $insert_id deduplicates "
                    "events)",
                    exc,
                    timeout_ms / 1000,
                )
                return not isinstance(exc, self._kafka_timeout)
            if isinstance(exc, self._kafka_timeout):
                # Nothing is marked committed, so the next commit sends these offsets again
                # (or later ones): committing an offset twice is harmless.
                logger.warning(
                    "commit not answered within %.1fs (%s); it is made again at the next commit",
                    timeout_ms / 1000,
                    exc,
                )
                return False
            # A rebalance got there first: the records will be read again and deduplicated.
            logger.warning("commit failed (%s); the next owner resumes from the last commit", exc)
            return True
        self._tracker.committed(offsets)
        self._metrics.commits += 1
        return True
