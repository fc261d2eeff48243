"""``LogEnds``: where each partition's log ended when a reader started, for reads that stop there.

The end offsets a broker lists are checked against the high watermark the first fetch of each
partition reports, and the larger is kept. Some Kafka-compatible brokers (the embedded test
broker among them) list the first offset of the last batch, plus one: a read that trusted that
alone stopped with the rest of the batch unread. Each partition is checked once, so a read
under a steady stream of new records still ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class LogEnds:
    """Each partition's end offset, checked against ``consumer``'s fetches (see the module)."""

    def __init__(self, listed: Mapping[Any, int]) -> None:
        self.offsets: dict[Any, int] = dict(listed)
        """Partition to end offset: listed by the broker, raised by a fetch where it said more."""
        self._checked: set[Any] = set()

    def checked(self, consumer: Any, partitions: Iterable[Any]) -> bool:
        """Check ``partitions`` (assigned to ``consumer``) against the high watermark of their
        first fetch; ``False`` while one has not been fetched yet, so its end is not known."""
        for partition in partitions:
            if partition in self._checked:
                continue
            highwater = consumer.highwater(partition)
            if highwater is None:
                return False
            self.offsets[partition] = max(self.offsets.get(partition, 0), highwater)
            self._checked.add(partition)
        return True
