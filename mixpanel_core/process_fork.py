"""``in_fork_children``: put an object right in every child made by ``os.fork()``, written once.

A child made by ``os.fork()`` (a pre-fork server's worker) inherits objects whose threads,
locks, buffers or random sequences belong to the parent: a lock held at the fork stays held,
records buffered before it would be sent twice. Each such object says how to reset itself.
The registry holds the object weakly, so registering never keeps it alive, and
``multiprocessing``'s own fork children run the resets too (``os.register_at_fork`` covers
every ``fork()``).

One hook is registered with ``os.register_at_fork`` for the whole process, which cannot take
one back: a hook per object made every client ever built (``Mixpanel(token)`` per web request,
as many official-SDK users write) a closure kept forever and a call at every later fork.
"""

from __future__ import annotations

import itertools
import logging
import os
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)

_resets: dict[int, tuple[weakref.ref[Any], Callable[[Any], object]]] = {}
"""The live objects' resets, in registration order; an object's entry leaves with it."""

_numbers = itertools.count()


def in_fork_children(owner: T, reset: Callable[[T], object]) -> None:
    """Call ``reset(owner)`` in every child forked while ``owner`` is alive."""
    number = next(_numbers)
    # The weak reference's callback runs when ``owner`` is freed: its entry goes with it.
    ref = weakref.ref(owner, lambda _: _resets.pop(number, None))
    _resets[number] = (ref, reset)


def _reset_in_child() -> None:
    for ref, reset in list(_resets.values()):
        alive = ref()
        if alive is None:
            continue
        try:
            reset(alive)
        except Exception:
            # One object's failure must not leave the others as the parent had them.
            logger.exception("resetting %r in a forked child failed", alive)


os.register_at_fork(after_in_child=_reset_in_child)


__all__ = ["in_fork_children"]
