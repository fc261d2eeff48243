"""``Reassignment``: what the forwarder does, on its main thread, when its partitions move.

On a rebalance the records buffered for revoked partitions are dropped. A partition assigned
back to this consumer keeps its fetch position in kafka-python, so it is sent back (``seek``)
to its first record not done; the others start from the group's commit, which never passes
a record not done. A delivery out at the rebalance goes on: a partition that comes back while
it is out gets its progress back, so what the delivery gets accepted counts and is committed,
and is sent back once it returns; records of partitions another member owns now are not
retried (the delivery's wait stops it, see ``DeliveryWait``) and get no report: their new
owner reads them again.

The listener (``rebalance``) only takes notes on kafka-python's IO thread; every consumer call
made here (``assignment``, ``seek``) is made on the thread that polls.
"""

from __future__ import annotations

import logging
import queue
from collections import Counter
from collections.abc import Iterable
from typing import Any

from mixpanel_core.forwarder.dead_lettering import DeadLettering
from mixpanel_core.forwarder.lag import LagMeter
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.forwarder.offsets import OffsetTracker, PartitionProgress, Resume
from mixpanel_core.forwarder.pending import PendingBatches
from mixpanel_core.forwarder.rebalance import Change, rebalance_listener

logger = logging.getLogger("mixpanel_core.forwarder")


class Reassignment:
    """Acts on the rebalance listener's notes for ``consumer`` (a kafka-python
    ``KafkaConsumer``): drops the buffered records of revoked partitions from ``pending``,
    sends partitions assigned back to their first record not done, and follows the partitions
    of the delivery out (one at a time: ``delivery_out``, ``delivery_returned``).
    """

    def __init__(
        self,
        consumer: Any,
        tracker: OffsetTracker,
        pending: PendingBatches,
        dead_lettering: DeadLettering,
        lag: LagMeter,
        metrics: ForwarderMetrics,
    ) -> None:
        self._consumer = consumer
        self._tracker = tracker
        self._pending = pending
        self._dead_lettering = dead_lettering
        self._lag = lag
        self._metrics = metrics
        self._changes: queue.SimpleQueue[Change] = queue.SimpleQueue()
        self._joined = False
        self._rewind: dict[Any, Resume] = {}
        """Revoked partitions whose dropped records must be read again if they come back."""
        self._in_flight: Counter[Any] = Counter()
        """Records of the delivery out (there is one at a time), by partition."""
        self._held: dict[Any, tuple[PartitionProgress, int | None]] = {}
        """Revoked partitions that had records in the delivery out: their progress (which that
        delivery keeps marking) and their ``Resume.committed``, until the next assignment."""
        self._back: dict[Any, int | None] = {}
        """Partitions assigned back while a delivery of their records was out, with their
        ``Resume.committed``: sent back to their first record not done once it returns."""
        self._disowned = 0

    @property
    def joined(self) -> bool:
        """Whether the group gave this member its partitions (none, maybe) at least once."""
        return self._joined

    @property
    def disowned(self) -> int:
        """Records of the delivery out whose partition another member owns now: while any,
        the delivery stops retrying (their new owner reads them again)."""
        return self._disowned

    def listener(self) -> Any:
        """The listener to subscribe with: it notes the changes this acts on."""
        return rebalance_listener(self._changes)

    def delivery_out(self, partitions: Iterable[Any]) -> None:
        """A delivery goes out; ``partitions`` has one entry per record: the record's partition."""
        self._in_flight = Counter(partitions)
        self._disowned = 0

    def delivery_returned(self) -> None:
        """The delivery is back. ``disowned`` is not reset here: only the waits inside a
        delivery read it, and ``delivery_out`` starts it again for the next one."""
        self._in_flight = Counter()

    def apply_changes(self) -> set[Any]:
        """Act on the listener's notes, in order; returns the partitions sent back by ``seek``."""
        rewound: set[Any] = set()
        while True:
            try:
                kind, partitions = self._changes.get_nowait()
            except queue.Empty:
                return rewound
            if kind == "revoked":
                self._revoked(partitions)
            else:
                rewound |= self._assigned(partitions)

    def reread_returned(self, *, stopping: bool = False) -> None:
        """Send the partitions assigned back while the delivery was out to their first record
        not done, now that the delivery's reports are applied: what it got accepted is
        committed at the next commit, and not read again; the rest is."""
        if not self._back:
            return
        # The round's dead letters first: a record dead-lettered is done once the broker has
        # its dead letter, and a seek to it would send it, and every record after it, again.
        if stopping:
            self._dead_lettering.settle_before_stopping()
        else:
            self._dead_lettering.settle()
        for partition, committed in self._back.items():
            progress = self._tracker.current(partition)
            offset = None if progress is None else progress.committable
            if progress is None or offset is None:
                continue
            self._consumer.seek(partition, offset)
            self._tracker.resume(partition, Resume(offset, committed, progress.done_ahead))
            logger.info(
                "reading %s[%d] again from offset %d (its records not done when it was "
                "revoked and assigned back during a delivery)",
                partition.topic,
                partition.partition,
                offset,
            )
        self._back.clear()

    def _revoked(self, partitions: frozenset[Any]) -> None:
        if not partitions:
            return  # every join starts with a revocation, of nothing the first time
        dropped = self._pending.drop(partitions)
        # A delivery out keeps marking the progress of its records: kept, for a partition
        # that comes back to this consumer while it is out (see _assigned).
        in_flight = {
            partition: self._tracker.current(partition)
            for partition in partitions
            if self._in_flight[partition]
        }
        for partition in partitions:
            self._back.pop(partition, None)
        # Kept until the assignment is known: only then is it clear who reads them again.
        resume = self._tracker.revoke(partitions)
        self._rewind.update(resume)
        for partition, progress in in_flight.items():
            if progress is not None:
                gone = resume.get(partition)
                self._held[partition] = (progress, None if gone is None else gone.committed)
        self._lag.assignment_changed()
        self._metrics.lag = {
            k: v
            for k, v in self._metrics.lag.items()
            if not any((p.topic, p.partition) == k for p in partitions)
        }
        logger.info(
            "partitions revoked: %s (dropped %d buffered records, and %d of their records are "
            "in a delivery still out; they will be read again unless it gets them accepted "
            "and the partition comes back)",
            _names(partitions),
            dropped,
            sum(self._in_flight[partition] for partition in partitions),
        )

    def _assigned(self, partitions: frozenset[Any]) -> set[Any]:
        """Send partitions assigned back to this consumer to their first record not done.

        kafka-python keeps the fetch position of a partition its consumer gets back (eager
        assignors revoke everything, then hand most of it back), so without the seek the
        records dropped at the revocation would never be read again, and a later commit
        would skip them. A partition that comes back while a delivery of its records is out
        gets its progress back, so that what the delivery gets accepted counts and is
        committed; it is sent back once the delivery returns (``reread_returned``).
        """
        logger.info("partitions assigned: %s", _names(partitions))
        self._joined = True
        self._lag.assignment_changed()
        # Several rebalances may be noted at once: seek only what is assigned now.
        current = self._consumer.assignment()
        rewound = set()
        for partition in sorted(partitions & current):
            resume = self._rewind.get(partition)
            held = self._held.pop(partition, None)
            if held is not None:
                progress, committed = held
                if self._in_flight[partition]:
                    self._tracker.restore(partition, progress, committed)
                    self._back[partition] = committed
                    rewound.add(partition)  # what this poll fetched is read again later
                    logger.info(
                        "%s[%d] is back while %d of its records are in a delivery still out: "
                        "what it gets accepted will be committed, and the partition read "
                        "again from its first record not done once it returns",
                        partition.topic,
                        partition.partition,
                        self._in_flight[partition],
                    )
                    continue
                # The delivery returned before the partition came back: what it got
                # accepted is not read again, nor what it dead-lettered (settled first: an
                # unacknowledged dead letter would leave its record the first not done).
                self._dead_lettering.settle_before_stopping()
                offset = progress.committable
                if offset is not None:
                    resume = Resume(offset, committed, progress.done_ahead)
            if resume is None:
                continue
            self._consumer.seek(partition, resume.offset)
            self._tracker.resume(partition, resume)
            rewound.add(partition)
            logger.info(
                "reading %s[%d] again from offset %d (its buffered records were dropped)",
                partition.topic,
                partition.partition,
                resume.offset,
            )
        # The revoked partitions not handed back are other members' now: they start from the
        # group's commit, which never passes a record this consumer had not done. The records
        # of theirs in the delivery out are no longer worth retrying.
        disowned = sum(self._in_flight[p] for p in self._held if p not in current)
        if disowned:
            self._disowned += disowned
            logger.info(
                "%d records of the delivery out belong to partitions another member owns "
                "now: they are not retried (their new owner reads them again)",
                disowned,
            )
        self._held.clear()
        self._rewind.clear()
        return rewound


def _names(partitions: frozenset[Any]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in sorted(partitions)) or "none"
