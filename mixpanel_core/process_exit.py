"""``at_exit``: run a clean-up when the process ends, however it ends.

A normal exit runs ``atexit`` handlers. Processes started by ``multiprocessing`` leave through
``os._exit``, which skips them, and run ``multiprocessing``'s finalizers instead; such a child
also forgets, when it starts, the finalizers it inherited. So the clean-up is registered both
ways, and registered again in each ``multiprocessing`` child. It runs at most once per
process. Everything that must not be lost at exit (queued records, buffers) goes through here.

The clean-ups run one after another. ``exit_time_left`` lets each count its bound from the
start of exit, so that several of them end within the largest bound, not the sum of them all.
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Callable
from multiprocessing.util import Finalize, register_after_fork

from mixpanel_core.process_fork import in_fork_children

EXIT_PRIORITY = 20
"""Above ``multiprocessing``'s own queues (10): a clean-up may still put records on one."""


class _ExitStart:
    at: float | None = None
    """``time.monotonic()`` when the first clean-up of this process's exit ran, ``None`` before."""

    def forget(self) -> None:
        # A child forked during the parent's exit has an exit of its own, still to start.
        self.at = None


_exit_start = _ExitStart()
in_fork_children(_exit_start, _ExitStart.forget)


def exit_time_left(bound: float) -> float:
    """What is left of ``bound`` seconds counted from the start of this process's exit (the
    first ``at_exit`` callback to run; all of ``bound`` before that), never below 0."""
    started = _exit_start.at
    if started is None:
        return bound
    return max(0.0, started + bound - time.monotonic())


class _ExitHook:
    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._done = False
        self._finalizer: Finalize | None = None

    def run(self) -> None:
        if not self._done:
            self._done = True
            if _exit_start.at is None:
                _exit_start.at = time.monotonic()
            self._callback()

    def register_finalizer(self) -> None:
        self._finalizer = Finalize(None, self.run, exitpriority=EXIT_PRIORITY)

    def cancel(self) -> None:
        self._done = True
        atexit.unregister(self.run)
        if self._finalizer is not None:
            self._finalizer.cancel()


def at_exit(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` once when this process exits; returns a function that cancels it.

    ``callback`` is kept until then: let it reach its object through a weak reference.
    A ``fork()`` child inherits the registration and runs ``callback`` at its own exit.
    """
    hook = _ExitHook(callback)
    atexit.register(hook.run)
    hook.register_finalizer()
    # Runs in each multiprocessing child, after it dropped the finalizers it inherited.
    register_after_fork(hook, _ExitHook.register_finalizer)
    return hook.cancel
