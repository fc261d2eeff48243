"""Which offsets are done, per partition, and so which offset may be committed.

A record is *done* once Mixpanel accepted it or the dead-letter topic acknowledged it. Records
finish out of order (endpoints are delivered separately), so the committable offset of a
partition is its oldest record not yet done, or the next offset to read when all are done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable
from typing import Any, NamedTuple


class Resume(NamedTuple):
    """Where to read a revoked partition again, should it be assigned back to this consumer."""

    offset: int
    """The first record not done: every record before it was delivered or dead-lettered."""
    committed: int | None
    """What this consumer last committed for it (or the first offset it read): the baseline
    that tells whether ``offset`` is news worth committing."""
    done: frozenset[int] = frozenset()
    """Records after ``offset`` already done (accepted ahead of an earlier record, another
    endpoint's): read again, they are not sent again (a profile ``$add`` applied twice)."""


class PartitionProgress:
    """Offsets read from one partition during one assignment, and which are done.

    When the partition is revoked its ``PartitionProgress`` is dropped; deliveries that finish
    later still call ``done`` on the dropped object, which then affects nothing, unless the
    partition came back to the same consumer while the delivery was out (``restore``).
    ``next_offset`` starts a progress at a known position with nothing outstanding: the
    partition was sent back there and every record before it is done.
    """

    __slots__ = ("_done", "_next", "_outstanding", "_skip", "partition", "start")

    def __init__(
        self, partition: Any, next_offset: int | None = None, skip: Iterable[int] = ()
    ) -> None:
        self.partition = partition
        self._outstanding: deque[int] = deque()
        self._done: set[int] = set()
        self._next: int | None = next_offset
        self._skip = set(skip)
        """Offsets done in an earlier assignment of this consumer's (see ``Resume.done``)."""
        self.start: int | None = None
        """The first offset read: committing it again would say nothing new."""

    @property
    def done_ahead(self) -> frozenset[int]:
        """Records done after the first one not done (what ``Resume.done`` keeps), with
        those still to be skipped."""
        return frozenset(self._done | self._skip)

    def done_before(self, offset: int) -> bool:
        """Whether the record at ``offset``, read again, was done in an earlier assignment:
        then it is noted done at once (read first), and not delivered again."""
        if offset not in self._skip:
            return False
        self._skip.discard(offset)
        self.done(offset)
        return True

    def read(self, offset: int) -> None:
        """Note a record that was handed out (offsets arrive in increasing order)."""
        if self.start is None:
            self.start = offset
        self._outstanding.append(offset)
        self._next = offset + 1

    def done(self, offset: int) -> None:
        """Note a record as delivered or dead-lettered."""
        outstanding = self._outstanding
        if outstanding and outstanding[0] == offset:
            outstanding.popleft()
        else:
            self._done.add(offset)
        done = self._done
        while outstanding and outstanding[0] in done:
            done.discard(outstanding.popleft())

    @property
    def committable(self) -> int | None:
        """The offset to commit: everything before it is done. ``None`` before any read."""
        if self._outstanding:
            return self._outstanding[0]
        return self._next

    @property
    def outstanding(self) -> int:
        """Records read but not yet done."""
        return len(self._outstanding)

    def undone_before(self, offset: int, *, besides: Collection[int] = ()) -> int:
        """Records read before ``offset`` and not yet done, other than those in ``besides``."""
        # _outstanding also holds the records done after the first one not done (in _done).
        skipped = self._done.union(besides)
        return sum(1 for o in self._outstanding if o < offset and o not in skipped)

    def first_undone_after(self, offset: int) -> int | None:
        """The first record read after ``offset`` and not yet done, or the next offset to read
        when there is none: committing it skips only records up to ``offset`` and records
        done. ``None`` before any read."""
        done = self._done
        return next((o for o in self._outstanding if o > offset and o not in done), self._next)


class OffsetTracker:
    """``PartitionProgress`` by partition, and what was last committed for each."""

    def __init__(self) -> None:
        self._progress: dict[Any, PartitionProgress] = {}
        self._committed: dict[Any, int] = {}

    def progress(self, partition: Any) -> PartitionProgress:
        """The progress of ``partition`` in its current assignment (created on first use)."""
        found = self._progress.get(partition)
        if found is None:
            found = self._progress[partition] = PartitionProgress(partition)
        return found

    def current(self, partition: Any) -> PartitionProgress | None:
        """The progress of ``partition`` in its current assignment, if it has one."""
        return self._progress.get(partition)

    def restore(self, partition: Any, progress: PartitionProgress, committed: int | None) -> None:
        """Make ``progress``, dropped at a revocation, current again (the partition came back
        while a delivery of its records was out): what that delivery gets accepted counts.
        ``committed`` is the baseline ``revoke`` gave (``Resume.committed``)."""
        self._progress[partition] = progress
        if committed is not None:
            self._committed[partition] = committed

    def revoke(self, partitions: Iterable[Any]) -> dict[Any, Resume]:
        """Forget revoked partitions; say where to read each one again if it comes back.

        Only partitions read from are in the answer. Their records not done are dropped by the
        caller, so whichever consumer owns a partition next must read them again: another
        member starts from the group's commit, which never passes them; this one keeps its
        fetch position and must be sent back to ``Resume.offset``.
        """
        resume = {}
        for partition in partitions:
            progress = self._progress.pop(partition, None)
            committed = self._committed.pop(partition, None)
            if progress is None or progress.committable is None:
                continue
            baseline = progress.start if committed is None else committed
            resume[partition] = Resume(progress.committable, baseline, progress.done_ahead)
        return resume

    def resume(self, partition: Any, at: Resume) -> None:
        """Start ``partition`` afresh at ``at.offset``, where its consumer was sent back.

        Everything before ``at.offset`` is done, so it is committable at once when it is past
        ``at.committed``: what was settled before the rebalance gets committed after it.
        """
        self._progress[partition] = PartitionProgress(partition, at.offset, at.done)
        if at.committed is not None:
            self._committed[partition] = at.committed

    def is_current(self, progress: PartitionProgress) -> bool:
        """Whether ``progress`` belongs to its partition's current assignment (not revoked)."""
        return self._progress.get(progress.partition) is progress

    def to_commit(self) -> dict[Any, int]:
        """Offsets that moved past what was last committed."""
        changes = {}
        for partition, progress in self._progress.items():
            offset = progress.committable
            if offset is None or offset == self._committed.get(partition, progress.start):
                continue
            changes[partition] = offset
        return changes

    def last_committed(self, partition: Any) -> int | None:
        """What this consumer last committed for ``partition``, or where it started reading
        it again after a rebalance (see ``resume``); ``None``: neither yet."""
        return self._committed.get(partition)

    def committed(self, offsets: dict[Any, int]) -> None:
        """Record a successful commit of ``offsets``."""
        for partition, offset in offsets.items():
            if partition in self._progress:
                self._committed[partition] = offset

    @property
    def outstanding(self) -> int:
        """Records read but not yet done, over every partition."""
        return sum(p.outstanding for p in self._progress.values())

    def positions(self) -> dict[Any, int]:
        """The committable offset of each partition read so far."""
        return {
            partition: offset
            for partition, progress in self._progress.items()
            if (offset := progress.committable) is not None
        }
