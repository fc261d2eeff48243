"""``at_exit``: run a clean-up when the process ends, however it ends.

A normal exit runs ``atexit`` handlers. Processes started by ``multiprocessing`` leave through
``os._exit``, which skips them, and run ``multiprocessing``'s finalizers instead; such a child
also forgets, when it starts, the finalizers it inherited. So the clean-up is registered both
ways, and registered again in each ``multiprocessing`` child. It runs at most once per
process. Everything that must not be lost at exit (queued records, buffers) goes through here.

The clean-ups run one after another, the last registered first, each once and on its own: one
that raises is logged and the others still run. ``exit_time_left`` lets each count its bound
from the start of exit, so that several of them end within the largest bound, not the sum of
them all.

A clean-up may say which transport it belongs to (``owned``). ``exit_before(user, used)`` then
says that ``user`` hands messages to ``used`` (a ``multiprocessing_queue`` to its
``fallback``): when the first clean-up of ``used`` is about to run, those of ``user`` not yet
run run first, where ``used``'s would have. That is the order ``client.close()`` closes them
in; registration order alone cannot give it, as a transport registers its clean-up when it is
built or first used, which may be after the transport that will feed it. Only those two move:
every other clean-up keeps its place, and with it its share of the exit's time.
"""

from __future__ import annotations

import atexit
import enum
import logging
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from multiprocessing.util import Finalize, register_after_fork

from mixpanel_core.process_fork import in_fork_children

logger = logging.getLogger(__name__)

EXIT_PRIORITY = 20
"""Above ``multiprocessing``'s own queues (10): a clean-up may still put records on one."""

CLOSE_FLOOR = 1.0
"""Seconds a transport's close (or flush) has at least, whatever its bound left it, when the
bound is shared with others closed before it (at exit, and by the client's ``close``): a
transport closed after a slow one still gets a healthy broker's answer to a request (or the
whole bound, if it is smaller)."""

_redactors: dict[int, Callable[[str], str]] = {}
"""By ``id`` of a transport: what replaces its credentials in a text (see ``redact_for``)."""


def redact_for(transport: object, redact: Callable[[str], str]) -> None:
    """Have the exit's log of a failed clean-up of ``transport`` go through ``redact``: what a
    third party's clean-up raised may quote a credential it was given (docs/errors.md)."""
    key = id(transport)
    _redactors[key] = redact
    forget = weakref.finalize(transport, _redactors.pop, key, None)
    forget.atexit = False  # needed by the exit's clean-ups, which finalizers at exit precede


class _ExitStart:
    at: float | None = None
    """``time.monotonic()`` when the first clean-up of this process's exit ran, ``None`` before."""
    feeders_took = 0.0
    """While a clean-up's own callback runs (one at a time: exit runs them in turn), the
    seconds its feeders' clean-ups took just before it, in its place (see ``exit_before``),
    which its own bound does not count; 0 otherwise."""

    def forget(self) -> None:
        # A child forked during the parent's exit has an exit of its own, still to start.
        self.at = None
        self.feeders_took = 0.0


_exit_start = _ExitStart()
in_fork_children(_exit_start, _ExitStart.forget)


def exit_time_left(bound: float) -> float:
    """What is left of ``bound`` seconds counted from the start of this process's exit (the
    first ``at_exit`` callback to run; all of ``bound`` before that), never below 0.

    Not counted: the time the clean-ups of transports feeding the one now running took just
    before it (``exit_before``). They ran in its place; counted, they left a fallback with a
    budget of its own to deliver only the floor of it, where it had the whole before.
    """
    started = _exit_start.at
    if started is None:
        return bound
    return max(0.0, started + _exit_start.feeders_took + bound - time.monotonic())


class _State(enum.Enum):
    PENDING = enum.auto()
    RUNNING = enum.auto()
    """Running the clean-ups of the transports that feed its owner, its own still to come."""
    DONE = enum.auto()
    CANCELLED = enum.auto()


class _Owned:
    """A clean-up and, weakly, the transport it belongs to (see ``owned``)."""

    def __init__(self, owner: object, callback: Callable[[], None]) -> None:
        self.owner = weakref.ref(owner)
        self._callback = callback

    def __call__(self) -> None:
        self._callback()

    def __repr__(self) -> str:
        return f"{self._callback!r} of {self.owner()!r}"


def owned(owner: object, callback: Callable[[], None]) -> Callable[[], None]:
    """``callback``, for ``at_exit``, as a clean-up of transport ``owner`` (held weakly): it
    then runs after the clean-ups of the transports that feed that one (``exit_before``).
    The owner travels with the callback, so a wrapper of ``at_exit`` that passes it on
    keeps it."""
    return _Owned(owner, callback)


class _ExitHook:
    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        # Weakly: an exit hook must not keep its transport alive (see ``at_exit``).
        self._owner = callback.owner if isinstance(callback, _Owned) else None
        owner = None if self._owner is None else self._owner()
        self.owner_id = 0 if owner is None else id(owner)
        """Where ``_registry`` keeps it."""
        self._state = _State.PENDING
        self._finalizer: Finalize | None = None
        self._slot: _AtexitSlot | None = None

    def pending_for(self, transport: object) -> bool:
        """Not run yet, and owned by ``transport``."""
        return self._state is _State.PENDING and (
            self._owner is not None and self._owner() is transport
        )

    def run(self) -> None:
        if self._state is not _State.PENDING:
            return
        self._state = _State.RUNNING  # also cuts a loop of transports feeding each other
        if _exit_start.at is None:
            _exit_start.at = time.monotonic()
        owner = None if self._owner is None else self._owner()
        feeders_from = time.monotonic()
        if owner is not None:
            for feeder in list(_feeders_of(owner)):
                try:
                    feeder.run()
                except BaseException:
                    # Ctrl-C or SystemExit in a feeder's clean-up: atexit would print it and
                    # go on to the next clean-up, and this one is that next: it must still
                    # close its own transport (left RUNNING, it never ran at all).
                    logger.exception("a clean-up at exit was interrupted: %r", feeder._callback)
        if self._state is not _State.RUNNING:
            return  # cancelled by a feeder's clean-up
        self._state = _State.DONE
        _exit_start.feeders_took = time.monotonic() - feeders_from
        try:
            self._callback()
        except Exception as exc:
            # Caught here, not left to atexit: a feeder's clean-up runs inside the run() of
            # the one it feeds, which must still close its own transport.
            redact = _redactors.get(id(owner)) if owner is not None else None
            if redact is None:
                logger.exception("a clean-up at exit failed: %r", self._callback)
            else:
                trace = redact("".join(traceback.format_exception(exc)).rstrip())
                logger.error("a clean-up at exit failed: %r\n%s", self._callback, trace)
        finally:
            _exit_start.feeders_took = 0.0

    def register_finalizer(self) -> None:
        self._finalizer = Finalize(None, self.run, exitpriority=EXIT_PRIORITY)

    def register_at_exit(self) -> None:
        self._slot = _AtexitSlot.for_hook(self)

    def cancel(self) -> None:
        if self._state is not _State.DONE:
            self._state = _State.CANCELLED
        _registry.forget(self)
        if self._slot is not None:
            self._slot.hooks.pop(id(self), None)
        if self._finalizer is not None:
            self._finalizer.cancel()


class _AtexitSlot:
    """One ``atexit`` registration, running the hooks given to it, the last given first.

    A hook joins the last slot made when nothing was registered with ``atexit`` since, which
    is the place a registration of its own would have had: the order of the exit's clean-ups,
    among themselves and among the application's handlers, is as if each had its own. One of
    its own cost a slot of Python's ``atexit`` table for the life of the process, cancelled
    or not (``atexit.unregister`` leaves it empty, and every later register and unregister
    looks through them all): an application building a client per web request, each closed,
    slowed down without end (186 µs a client at 250,000 of them)."""

    _last: _AtexitSlot | None = None
    _last_index = -1
    """The slot of ``atexit``'s table that ``_last`` took."""

    def __init__(self) -> None:
        self.hooks: dict[int, _ExitHook] = {}

    @classmethod
    def for_hook(cls, hook: _ExitHook) -> _AtexitSlot:
        # Private, but in every CPython: the slots taken, the empty ones too. Without it,
        # each hook has a registration of its own, as before.
        taken = getattr(atexit, "_ncallbacks", None)
        with _registry.lock:  # made anew in a fork() child
            slot = cls._last
            if slot is None or taken is None or taken() != cls._last_index + 1:
                slot = cls()
                atexit.register(slot.run)
                cls._last, cls._last_index = slot, taken() - 1 if taken is not None else -1
            slot.hooks[id(hook)] = hook
        return slot

    def run(self) -> None:
        waiting = list(self.hooks.values())  # the last given, last: run first
        while waiting:
            # As atexit does between its handlers, a hook's exception (a signal's, landing in
            # it or between two of them) is said, and the others still run.
            try:
                while waiting:
                    waiting.pop().run()
            except BaseException:
                print("Exception ignored in an exit hook of mixpanel-core:", file=sys.stderr)
                traceback.print_exc()


class _Registry:
    """The hooks not cancelled and ``exit_before``'s pairs, indexed so that ``_feeders_of``
    finds a transport's without looking through everyone's: with one look through all of
    them per pair, registering and running n pairs cost n * n (41 s at exit for 10,000).

    Ids index them, held weakly: an id outlives its object and may be taken by another, so
    each entry is checked against the object itself (``pending_for``, the pair's refs)."""

    def __init__(self) -> None:
        self.hooks: dict[int, dict[int, _ExitHook]] = {}
        """By the id of the transport that owns them (0 for none), then their own, each
        transport's in registration order."""
        self.pairs: dict[int, dict[int, tuple[weakref.ref[object], weakref.ref[object]]]] = {}
        """``(user, used)``, by the id of ``used``, then of ``user``."""
        self.entries = 0
        """Pairs and owners of hooks held; emptied ones are dropped once this has doubled
        since the last ``sweep`` (a sweep at every call was n * n again)."""
        self.entries_at_sweep = 0
        self.lock = threading.RLock()
        """Held to add or drop an owner's or a transport's entry: never while a clean-up runs,
        and not by ``forget``. Reentrant, so that a finalizer the garbage collector runs
        on a thread holding it cannot hang that thread, whatever the finalizer registers."""

    def add_hook(self, hook: _ExitHook) -> None:
        with self.lock:
            hooks = self.hooks.get(hook.owner_id)
            if hooks is not None:
                hooks[id(hook)] = hook
            else:
                self.hooks[hook.owner_id] = {id(hook): hook}
                self._added()

    def forget(self, hook: _ExitHook) -> None:
        """Drop a cancelled hook (one atomic step: safe from a finalizer, unlocked)."""
        self.hooks.get(hook.owner_id, {}).pop(id(hook), None)

    def add_pair(self, user: object, used: object) -> None:
        try:
            refs = (weakref.ref(user), weakref.ref(used))
        except TypeError:
            return  # an object that cannot be referenced weakly owns no exit hook either
        with self.lock:
            users = self.pairs.setdefault(id(used), {})
            kept = users.get(id(user))
            if kept is None or kept[0]() is not user or kept[1]() is not used:
                users[id(user)] = refs  # new, or the ids of a pair that is gone, taken again
            if kept is None:
                self._added()  # after: a sweep drops what is empty

    def users_of(self, owner: object) -> list[object]:
        """The transports ``exit_before`` put before ``owner``."""
        pairs = list(self.pairs.get(id(owner), {}).values())
        users = [user() for user, used in pairs if used() is owner]
        return [user for user in users if user is not None]

    def pending_hooks_of(self, owner: object) -> list[_ExitHook]:
        """``owner``'s hooks not run yet, the last registered first (atexit's order)."""
        hooks = list(self.hooks.get(id(owner), {}).values())
        return [hook for hook in reversed(hooks) if hook.pending_for(owner)]

    def _added(self) -> None:
        self.entries += 1
        if self.entries > 2 * self.entries_at_sweep:
            self._sweep()

    def _sweep(self) -> None:
        """Drop the pairs whose transports are gone, and the owners left with no hook."""
        for used_id, users in list(self.pairs.items()):
            for user_id, (user, used) in list(users.items()):
                if user() is None or used() is None:
                    del users[user_id]
            if not users:
                del self.pairs[used_id]
        for owner_id, hooks in list(self.hooks.items()):
            if not hooks:
                del self.hooks[owner_id]
        self.entries = self.entries_at_sweep = sum(map(len, self.pairs.values())) + len(self.hooks)

    def after_fork(self) -> None:
        # A child forked while another thread held the lock inherits it held, by nobody.
        self.lock = threading.RLock()


_registry = _Registry()
in_fork_children(_registry, _Registry.after_fork)


def _feeders_of(owner: object) -> Iterator[_ExitHook]:
    """The pending hooks of every transport ``exit_before`` put before ``owner``, each
    transport's last registered first (atexit's order)."""
    for user in _registry.users_of(owner):
        yield from _registry.pending_hooks_of(user)


def exit_before(user: object, used: object) -> None:
    """At exit, run ``user``'s clean-ups (see ``owned``) before ``used``'s:
    ``user`` hands messages to ``used``, which must still take them. Held weakly."""
    _registry.add_pair(user, used)


def at_exit(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` once when this process exits; returns a function that cancels it.

    ``callback`` is kept until then: let it reach its object through a weak reference. Give
    a transport's clean-up as ``owned(transport, callback)``, so that it runs after those of
    the transports that feed it. A ``fork()`` child inherits the registration and runs
    ``callback`` at its own exit.
    """
    hook = _ExitHook(callback)
    _registry.add_hook(hook)
    hook.register_at_exit()
    hook.register_finalizer()
    # Runs in each multiprocessing child, after it dropped the finalizers it inherited.
    register_after_fork(hook, _ExitHook.register_finalizer)
    return hook.cancel


def under_way_elsewhere(closing: threading.Thread | None, over: threading.Event) -> bool:
    """Whether a ``close`` begun on the thread ``closing``, and not ``over`` yet, is still
    under way: on another thread, which still runs. One begun on this thread (the one running
    the exit close) and not over was interrupted (a signal's exception, raised before it could
    say so: its ``finally`` not reached yet), as was one whose thread is gone; the exit close
    finishes those rather than wait for them."""
    if over.is_set() or closing is None:
        return False
    return closing is not threading.current_thread() and closing.is_alive()
