"""``$insert_id`` values: unique per message, cheap to make, and never repeated after ``fork()``."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable

from mixpanel_core.process_fork import in_fork_children


class InsertIdGenerator:
    """Makes 32 lowercase hex characters: a counter from a random 128-bit start.

    Unique like ``uuid4().hex`` for Mixpanel's purpose (deduplication of retries of the same
    message) at a fraction of the cost: two processes collide only if their random starts
    fall within the number of ids they make. The start is drawn again in a forked child, so
    two processes never share a sequence.
    """

    def __init__(self) -> None:
        self._reseed()
        in_fork_children(self, InsertIdGenerator._reseed)

    def _reseed(self) -> None:
        # Starting below 2**127 leaves 2**127 ids before 32 hex digits could overflow.
        start = int.from_bytes(os.urandom(16)) >> 1
        # A chain of C iterators: taking the next id runs no Python code at all.
        self.next_id: Callable[[], str] = map("%032x".__mod__, itertools.count(start)).__next__

    def __call__(self) -> str:
        return self.next_id()


def derived_insert_id(*parts: object) -> str:
    """A deterministic ``$insert_id`` from a natural key (e.g. topic, partition, offset)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
