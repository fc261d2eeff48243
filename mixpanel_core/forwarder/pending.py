"""Records waiting for delivery, one queue per endpoint, each with the age of its oldest record.

An endpoint is *due* when it holds ``batch_records`` records or its oldest has waited ``linger``
seconds: full requests under load, and no record waiting long when traffic is light.

The batches are *backlogged* while records put back after a failed delivery wait to be tried
again, or while an endpoint already holds a full batch: reading more from Kafka then would only
grow memory, so the forwarder pauses its partitions until this clears.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from mixpanel_core.forwarder.offsets import PartitionProgress
from mixpanel_core.messages import Endpoint, Message


class PendingRecord(NamedTuple):
    """A decoded record, where it came from, and the raw record to dead-letter if need be."""

    progress: PartitionProgress
    offset: int
    message: Message
    raw: Any
    """The kafka-python ``ConsumerRecord``: its key, value and headers go to the dead letters."""
    attempts: int = 0
    """Requests made for it in earlier delivery rounds (put back after each failed one)."""


class PendingBatches:
    """Per-endpoint queues of ``PendingRecord`` (used from the forwarder's main thread only)."""

    def __init__(self, batch_records: int, linger: float) -> None:
        self._batch_records = batch_records
        self._linger = linger
        self._queues: dict[Endpoint, list[PendingRecord]] = {}
        self._since: dict[Endpoint, float] = {}
        self._retrying: set[Endpoint] = set()
        """Endpoints whose queue starts with records put back after a failed delivery."""

    def add(self, item: PendingRecord, now: float) -> None:
        endpoint = item.message.endpoint
        queue = self._queues.get(endpoint)
        if queue is None:
            queue = self._queues[endpoint] = []
        if not queue:
            self._since[endpoint] = now
        queue.append(item)

    def due(self, now: float, *, everything: bool = False) -> list[Endpoint]:
        """Endpoints to deliver now (``everything``: every endpoint holding records)."""
        return [
            endpoint
            for endpoint, queue in self._queues.items()
            if queue
            and (
                everything
                or len(queue) >= self._batch_records
                or now - self._since[endpoint] >= self._linger
            )
        ]

    def next_due_in(self, now: float) -> float | None:
        """Seconds until an endpoint is due (0: one is); ``None`` when all are empty."""
        waiting = [endpoint for endpoint, queue in self._queues.items() if queue]
        if not waiting:
            return None
        if any(len(self._queues[endpoint]) >= self._batch_records for endpoint in waiting):
            return 0.0
        return max(0.0, min(self._since[e] for e in waiting) + self._linger - now)

    @property
    def backlogged(self) -> bool:
        """Whether records wait to be retried or an endpoint holds a full batch already."""
        return any(
            queue and (endpoint in self._retrying or len(queue) >= self._batch_records)
            for endpoint, queue in self._queues.items()
        )

    def take(self, endpoint: Endpoint) -> list[PendingRecord]:
        """Up to ``batch_records`` of the oldest records of ``endpoint``, removed from its queue."""
        queue = self._queues.get(endpoint, [])
        taken, rest = queue[: self._batch_records], queue[self._batch_records :]
        self._queues[endpoint] = rest
        # Records put back are at the front, so they are the ones taken: they are being tried
        # again now, and go back (flagged again) only if this attempt fails too.
        self._retrying.discard(endpoint)
        return taken

    def put_back(self, endpoint: Endpoint, items: list[PendingRecord], now: float) -> None:
        """Return undelivered ``items`` to the front of their queue, due at once."""
        self._queues[endpoint] = items + self._queues.get(endpoint, [])
        self._since[endpoint] = now - self._linger
        self._retrying.add(endpoint)

    def drop(self, partitions: Iterable[Any]) -> int:
        """Forget the records of revoked ``partitions``; returns how many were dropped."""
        revoked = set(partitions)
        dropped = 0
        for endpoint, queue in self._queues.items():
            kept = [item for item in queue if item.progress.partition not in revoked]
            dropped += len(queue) - len(kept)
            self._queues[endpoint] = kept
        return dropped

    def drop_after(self, stops: dict[Any, int]) -> None:
        """Forget the records after ``stops[partition]`` on each partition in ``stops``."""
        for endpoint, queue in self._queues.items():
            self._queues[endpoint] = [
                item
                for item in queue
                if item.offset <= stops.get(item.progress.partition, item.offset)
            ]

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())
