"""``in_fork_children``: put an object right in every child made by ``os.fork()``, written once.

A child made by ``os.fork()`` (a pre-fork server's worker) inherits objects whose threads,
locks, buffers or random sequences belong to the parent: a lock held at the fork stays held,
records buffered before it would be sent twice. Each such object says how to reset itself.
The registry holds the object weakly, so registering never keeps it alive, and
``multiprocessing``'s own fork children run the resets too (``os.register_at_fork`` covers
every ``os.fork()``).

uWSGI forks its workers in C: unless told ``py-call-osafterfork`` or
``py-call-uwsgi-fork-hooks``, it runs none of Python's ``os.register_at_fork`` hooks, and every
worker of an app loaded in the master (uWSGI's default) made the same ``$insert_id`` sequence
(Mixpanel keeps one event of each id) and never started its ``buffered_http`` sender. So
inside uWSGI the resets are also registered with uWSGI's own post-fork hook; a child reset by
both runs them once.

One hook is registered with ``os.register_at_fork`` for the whole process, which cannot take
one back: a hook per object made every client ever built (``Mixpanel(token)`` per web request,
as many official-SDK users write) a closure kept forever and a call at every later fork.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import sys
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
    if not _registered_with_uwsgi:
        # mixpanel-core imported before uWSGI started in this interpreter (pyuwsgi launched
        # from an app's own command): uWSGI is found once the app builds its clients.
        _register_with_uwsgi()
    number = next(_numbers)
    # The weak reference's callback runs when ``owner`` is freed: its entry goes with it.
    ref = weakref.ref(owner, lambda _: _resets.pop(number, None))
    _resets[number] = (ref, reset)


_reset_for_pid = os.getpid()
"""The process the resets last ran for (or that imported this module): not reset again."""


def _reset_in_child() -> None:
    global _reset_for_pid
    pid = os.getpid()
    # Both hooks run in a uWSGI worker told to run Python's (``py-call-osafterfork``); and
    # uWSGI without a master calls its hook in its first worker, the process that loaded the
    # app, too.
    if pid == _reset_for_pid:
        return
    _reset_for_pid = pid
    for ref, reset in list(_resets.values()):
        alive = ref()
        if alive is None:
            continue
        try:
            reset(alive)
        except Exception:
            # One object's failure must not leave the others as the parent had them.
            logger.exception("resetting %r in a forked child failed", alive)


_registered_with_uwsgi = False


def _register_with_uwsgi() -> None:
    """Have uWSGI run the resets in the workers it forks, first of its post-fork hooks;
    nothing outside uWSGI.

    uWSGI puts its embedded ``uwsgi`` module in ``sys.modules`` before it loads the app, so
    looking there costs nothing elsewhere and imports nothing by that name.
    """
    global _registered_with_uwsgi
    uwsgi: Any = sys.modules.get("uwsgi")
    if _registered_with_uwsgi or uwsgi is None or not hasattr(uwsgi, "masterpid"):
        return
    _registered_with_uwsgi = True
    earlier_hook = getattr(uwsgi, "post_fork_hook", None)
    earlier_spooler = getattr(uwsgi, "spooler", None)
    decorators: Any = None
    try:
        # Shipped with uWSGI (pyuwsgi too); it refuses to load without a master process.
        decorators = importlib.import_module("uwsgidecorators")
    except Exception:
        logger.debug("uwsgidecorators unavailable: chaining uwsgi.post_fork_hook", exc_info=True)
    else:
        # Its first import replaces both hooks with its own: those the app had set are kept.
        if earlier_spooler is not None:
            uwsgi.spooler = earlier_spooler
        if earlier_hook is not None and earlier_hook is not uwsgi.post_fork_hook:
            decorators.postfork(earlier_hook)
    chain = getattr(decorators, "postfork_chain_hook", None)
    if chain is not None and uwsgi.post_fork_hook is chain:
        # Its ``postfork`` chain, which apps use too: a hook set directly would be replaced
        # by the app's own later first import of uwsgidecorators. First in the chain: the
        # chain stops at a hook that raises (an app's database not up yet), and a hook that
        # tracks an event must find the child's own state, not the master's.
        chain_list = getattr(decorators, "postfork_chain", None)
        if isinstance(chain_list, list):
            chain_list.insert(0, _reset_in_child)
        else:
            decorators.postfork(_reset_in_child)
        return
    previous = getattr(uwsgi, "post_fork_hook", None)

    def post_fork() -> None:
        _reset_in_child()  # first: it raises nothing, while the previous hook might
        if previous is not None:
            previous()

    uwsgi.post_fork_hook = post_fork


os.register_at_fork(after_in_child=_reset_in_child)
_register_with_uwsgi()


__all__ = ["in_fork_children"]
