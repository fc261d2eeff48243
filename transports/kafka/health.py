"""Whether a kafka transport's producer can still deliver, as its watchdog's looks find it.

It can no longer deliver when kafka-python put it in a fatal error state, when it lost its
producer id for good (seen at two looks in a row), or when a record it holds was neither
acknowledged nor failed within ``delivery_timeout_ms`` plus ``max_block_ms`` plus
``STUCK_MARGIN`` (kafka-python expires nothing while an idempotent producer waits for a
producer id). Such a producer is replaced (``replacement``).
"""

from __future__ import annotations

import collections
from typing import Any

from mixpanel_core.messages import Message

STUCK_MARGIN = 5.0
"""Seconds past the producer's ``delivery_timeout_ms`` after which a record it still holds, with
neither an acknowledgement nor a failure, means the producer is stuck: it is replaced."""


def unrecoverable(producer: Any) -> str | None:
    """Why ``producer`` will never deliver again, if kafka-python says so: its transaction
    manager (idempotence) is in the fatal error state, which only a new producer leaves."""
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None or not manager.has_fatal_error():
        return None
    return f"is in a fatal error state ({manager.last_error!r})"


def lost_producer_id(producer: Any) -> bool:
    """Whether an idempotent ``producer`` has no producer id while not asking for one.

    kafka-python 3.0 resets the id after a batch it had sent expires (a broker that stopped
    answering) but asks for a new one only from its initial state, so it then sends nothing,
    and expires nothing, ever again. A producer still getting its first id is not in this state.
    """
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None or manager.is_transactional() or manager.has_producer_id():
        return False
    state = getattr(manager, "_current_state", None)
    return getattr(state, "name", None) == "READY"


class ProducerHealth:
    """What the watchdog's looks at one transport's producer remember between two looks."""

    def __init__(self, max_block: float, delivery_timeout: float) -> None:
        self.stuck_after = delivery_timeout + max_block + STUCK_MARGIN
        """Seconds a record may stay unanswered before its producer counts as stuck: a healthy
        producer may wait ``max_block_ms`` in ``send()`` (for metadata) before its own
        ``delivery_timeout_ms`` starts."""
        self._suspect: Any = None
        """The producer seen without a producer id at the last look (stuck if seen twice)."""
        self._ages: collections.deque[tuple[float, int]] = collections.deque()
        """(time, newest send number then), one per watchdog look while records are held."""

    def forget(self) -> None:
        """Start afresh, for a new producer."""
        self._suspect = None
        self._ages.clear()

    def why_broken(
        self, producer: Any, unacknowledged: dict[int, Message], now: float
    ) -> str | None:
        """One look at ``producer``, holding ``unacknowledged`` by send number: why it can no
        longer deliver, or ``None``."""
        broken = unrecoverable(producer)
        if broken is None and lost_producer_id(producer):
            if self._suspect is producer:
                broken = (
                    "lost its producer id and never asks for another (kafka-python's "
                    "idempotent producer)"
                )
            self._suspect = producer
        else:
            self._suspect = None
        if broken is None and self._held_too_long(unacknowledged, now):
            broken = (
                f"held a record for more than {self.stuck_after:g}s (delivery_timeout_ms "
                f"plus max_block_ms plus {STUCK_MARGIN:g}s) without an acknowledgement or "
                "a failure"
            )
        return broken

    def _held_too_long(self, unacknowledged: dict[int, Message], now: float) -> bool:
        """Whether the oldest unacknowledged record was sent ``stuck_after`` seconds ago or more.

        Send numbers grow with time: the newest number at each look is kept, so a record whose
        number is at most the one seen ``stuck_after`` seconds ago was sent before then. No
        clock is read per send.
        """
        ages = self._ages
        try:
            oldest = next(iter(unacknowledged))
            newest = next(reversed(unacknowledged))
        except (StopIteration, RuntimeError):  # none held, or changed while looked at
            if not unacknowledged:
                ages.clear()
            return False
        ages.append((now, newest))
        cutoff = now - self.stuck_after
        while len(ages) > 1 and ages[1][0] <= cutoff:
            ages.popleft()
        return ages[0][0] <= cutoff and oldest <= ages[0][1]
