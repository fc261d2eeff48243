"""``in_fork_children``: put an object right in every child made by ``os.fork()``, written once.

A child made by ``os.fork()`` (a pre-fork server's worker) inherits objects whose threads,
locks, buffers or random sequences belong to the parent: a lock held at the fork stays held,
records buffered before it would be sent twice. Each such object says how to reset itself.
The hook holds the object weakly, so registering never keeps it alive, and ``multiprocessing``'s
own fork children run the hook too (``os.register_at_fork`` covers every ``fork()``).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_fork_children(owner: T, reset: Callable[[T], object]) -> None:
    """Call ``reset(owner)`` in every child forked while ``owner`` is alive."""
    ref = weakref.ref(owner)

    def after_fork_in_child() -> None:
        alive = ref()
        if alive is not None:
            reset(alive)

    os.register_at_fork(after_in_child=after_fork_in_child)


__all__ = ["in_fork_children"]
