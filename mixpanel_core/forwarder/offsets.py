"""Which offsets are done, per partition, and so which offset may be committed.

A record is *done* once Mixpanel accepted it or the dead-letter topic acknowledged it. Records
finish out of order (endpoints are delivered separately), so the committable offset of a
partition is its oldest record not yet done, or the next offset to read when all are done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any


class PartitionProgress:
    """Offsets read from one partition during one assignment, and which are done.

    When the partition is revoked its ``PartitionProgress`` is dropped; deliveries that finish
    later still call ``done`` on the dropped object, which then affects nothing.
    """

    __slots__ = ("_done", "_next", "_outstanding", "partition", "start")

    def __init__(self, partition: Any) -> None:
        self.partition = partition
        self._outstanding: deque[int] = deque()
        self._done: set[int] = set()
        self._next: int | None = None
        self.start: int | None = None
        """The first offset read: committing it again would say nothing new."""

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

    def revoke(self, partitions: Iterable[Any]) -> None:
        """Forget revoked partitions: their unfinished records will be read again elsewhere."""
        for partition in partitions:
            self._progress.pop(partition, None)
            self._committed.pop(partition, None)

    def to_commit(self) -> dict[Any, int]:
        """Offsets that moved past what was last committed."""
        changes = {}
        for partition, progress in self._progress.items():
            offset = progress.committable
            if offset is None or offset == self._committed.get(partition, progress.start):
                continue
            changes[partition] = offset
        return changes

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
