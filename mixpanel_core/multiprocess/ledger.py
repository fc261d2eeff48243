"""``ProducerLedger``: which producers are open, and how many records they queued, shared.

Every process that produces writes here, so a producer may be killed while it holds the
lock. The lock is therefore a POSIX record lock (``fcntl.lockf``) on an unlinked temporary
file, which the kernel releases when its holder dies, not a ``multiprocessing`` lock (a
semaphore, held forever by a dead process). Record locks belong to a process, so a thread
lock orders the threads of one process first.

Open producers are kept by pid, so that the owner does not wait at ``close`` for a producer
that was killed before it could say it closed.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import multiprocessing
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mixpanel_core.multiprocess.pipe import InheritableFd
from mixpanel_core.process_fork import in_fork_children

logger = logging.getLogger(__name__)

MAX_OPEN_PRODUCERS = 4096
"""Producers (worker processes' transports) that can be open at once and waited for."""


class ProducerLedger:
    """Open producers by pid, and the records producers put in the pipe."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        fd, path = tempfile.mkstemp(prefix="mixpanel-mpq-")
        os.unlink(path)  # only the descriptor is needed; nothing is left behind
        self._file = InheritableFd(fd)
        self._slots: Any = context.RawArray(ctypes.c_int, MAX_OPEN_PRODUCERS)
        self._queued: Any = context.RawValue(ctypes.c_longlong, 0)
        self._threads = threading.Lock()
        self._watch_forks()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_threads"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._threads = threading.Lock()
        self._watch_forks()

    def _watch_forks(self) -> None:
        # A fork child may inherit the thread lock held by a thread that does not exist
        # there: give the child a fresh one.
        in_fork_children(self, ProducerLedger._renew_thread_lock)

    def _renew_thread_lock(self) -> None:
        self._threads = threading.Lock()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._threads:
            fcntl.lockf(self._file.fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(self._file.fd, fcntl.LOCK_UN)

    # -- records -----------------------------------------------------------------------------

    def count_queued(self, records: int) -> None:
        with self._locked():
            self._queued.value += records

    @property
    def queued(self) -> int:
        """Records producers started writing to the pipe (less those they took back)."""
        return int(self._queued.value)

    # -- open producers ----------------------------------------------------------------------

    def opened(self, running: Callable[[int], bool]) -> int:
        """Record a producer open in this process; returns its slot (-1: not recorded)."""
        pid = os.getpid()
        with self._locked():
            held: list[int] = self._slots[:]
            if 0 in held:
                index = held.index(0)
            else:
                # Every slot is taken: reuse one left by a producer killed before it closed.
                index = next((i for i, p in enumerate(held) if p != pid and not running(p)), -1)
            if index >= 0:
                self._slots[index] = pid
                return index
        logger.warning(
            "more than %d producers are open; the owner's close will not wait for this one",
            MAX_OPEN_PRODUCERS,
        )
        return -1

    def closed(self, slot: int) -> None:
        if slot >= 0:
            with self._locked():
                self._slots[slot] = 0

    def open_pids(self, running: Callable[[int], bool]) -> list[int]:
        """The pids of the open producers that still run."""
        return [pid for pid in self._slots[:] if pid and running(pid)]
