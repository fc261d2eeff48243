"""The one thread that looks at every kafka transport's producer, to have a broken one replaced."""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import TYPE_CHECKING

from .log import logger

if TYPE_CHECKING:
    from .transport import KafkaTransport

_getpid = os.getpid

WATCH_INTERVAL = 1.0
"""Seconds between two looks of the watchdog at each transport's producer and oldest record."""


class Watchdog:
    """One daemon thread that looks at every kafka transport's producer each ``WATCH_INTERVAL``
    (or at once when woken) and has a broken one replaced (``KafkaTransport._watch``). It holds
    the transports weakly, and ends once none is left open; after ``fork()`` the child starts
    its own thread at its first send."""

    def __init__(self) -> None:
        self._transports: weakref.WeakSet[KafkaTransport] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = -1

    def watch(self, transport: KafkaTransport) -> None:
        with self._lock:
            self._transports.add(transport)
            if self._thread is None or self._pid != _getpid() or not self._thread.is_alive():
                self._woken = threading.Event()
                self._pid = _getpid()
                self._thread = threading.Thread(
                    target=self._run, name="mixpanel-core-kafka-watchdog", daemon=True
                )
                self._thread.start()

    def wake(self) -> None:
        self._woken.set()

    def _run(self) -> None:
        while True:
            self._woken.wait(WATCH_INTERVAL)
            self._woken.clear()
            self._look_at_all(time.monotonic())
            with self._lock:
                # Every transport closed or freed: the thread ends (``watch`` starts another),
                # rather than waking every second for the life of the process.
                if not self._transports and self._thread is threading.current_thread():
                    self._thread = None
                    return

    def _look_at_all(self, now: float) -> None:
        # In a function of its own, so no transport stays referenced by this thread (and alive)
        # while it waits for the next look.
        for transport in list(self._transports):
            if transport._closed:
                self._transports.discard(transport)
                continue
            try:
                transport._watch(now)
            except Exception:
                logger.exception("transport %r: the producer watchdog failed", transport._name)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # a parent's thread may have held it at the fork
        self._thread = None


WATCHDOG = Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WATCHDOG._after_fork_in_child)
