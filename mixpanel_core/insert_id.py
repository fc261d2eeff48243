"""``$insert_id`` values: unique per message, cheap to make, and never repeated after ``fork()``."""

from __future__ import annotations

import hashlib
import itertools
import os
import weakref


class InsertIdGenerator:
    """Makes 32 lowercase hex characters: a random per-process prefix and a counter.

    Unique like ``uuid4().hex`` for Mixpanel's purpose (deduplication of retries of the same
    message), at a fraction of the cost. The prefix is drawn again in a forked child, so two
    processes never share a sequence.
    """

    def __init__(self) -> None:
        self._reseed()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reseed_if_alive(ref))

    def _reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(4)))

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


def _reseed_if_alive(ref: weakref.ref[InsertIdGenerator]) -> None:
    generator = ref()
    if generator is not None:
        generator._reseed()


def derived_insert_id(*parts: object) -> str:
    """A deterministic ``$insert_id`` from a natural key (e.g. topic, partition, offset)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
