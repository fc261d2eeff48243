"""``QueueChannel``: what producers, the sender and the owning process share.

The pieces are a pipe and ``multiprocessing`` objects made from the ``spawn`` context, so that
they can be handed to children started by any method: inherited by ``fork`` children, pickled
(as ``Process`` arguments) to ``spawn`` and ``forkserver`` ones. Like ``multiprocessing.Queue``,
a channel can only be passed to a child when it is started, never sent over a queue.

Nothing a producer touches is guarded by a lock shared across processes: a ``multiprocessing``
lock (a semaphore, also inside ``Event`` and a locked ``Value``) taken by a process that is
then killed stays taken forever, and every other process that needs it waits forever. So the
sender's liveness is plain shared memory (``RawValue``), each value written by one kind of
writer with a single store and read without a lock, and the producers' ledger takes record
locks, which the kernel releases when their holder dies. The report queue does hold
``multiprocessing`` locks, but only the sender writes to it and only the owner reads it.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from multiprocessing.queues import Queue
from typing import Any

import attrs

from mixpanel_core.config import Config
from mixpanel_core.multiprocess.ledger import ProducerLedger
from mixpanel_core.multiprocess.options import MultiprocessingQueueOptions
from mixpanel_core.multiprocess.pipe import FramePipe
from mixpanel_core.process_fork import in_fork_children

STOP = "stop"
"""The tag of the owner's stop request (``stop_request``)."""


def stop_request(still_open: int, deadline: float | None = None) -> tuple[str, int, float | None]:
    """Queued by the owner's ``close``: drain what is left, then exit, by ``deadline``.

    A worker producer counts itself closed only once its frames are in the pipe, so with
    ``still_open == 0`` every frame is ahead of this item and the sender can exit as soon as
    it reads it. Otherwise frames may still follow, and the sender waits for a quiet queue.

    ``deadline`` is the owner's, on the ``time.monotonic()`` clock: on one host that clock
    is the system's, the same in every process. The sender must have closed its inner
    transport and shipped the last reports before it, or the owner terminates it. None:
    no deadline (the sender allows its inner transport ``shutdown_timeout`` to close).
    """
    return (STOP, still_open, deadline)


def flush_request(token: int, deadline: float) -> tuple[str, int, float]:
    """Queued by the owner's ``flush``: the sender flushes its inner transport and answers
    with the records it did not deliver, early enough for the answer to arrive by the owner's
    ``deadline`` (``time.monotonic()``, as for ``stop_request``)."""
    return ("flush", token, deadline)


@attrs.frozen
class SenderSpec:
    """What the sender process needs to build its inner transport."""

    transport: str
    """The ``multiprocessing_queue`` transport's own name, for reports and errors."""
    inner: str
    config: Config


class QueueChannel:
    """The frame pipe, the report queue, the producers' ledger and the sender's liveness."""

    def __init__(self, options: MultiprocessingQueueOptions, spec: SenderSpec) -> None:
        context = multiprocessing.get_context("spawn")
        self.options = options
        self.spec = spec
        self.pipe = FramePipe()
        """Frames (in chunks) from producers and control items from the owner."""
        self.reports: Queue[Any] = context.Queue()
        """Report batches and answers from the sender to the owner (its only writer)."""
        self.gone = context.RawValue(ctypes.c_bool, False)
        """True once the sender has exited (set by the sender, or by the owner that saw it
        die). Both only ever store True, so they need no lock, and readers take none: a
        ``multiprocessing.Event`` here took a lock in every producer's liveness check, and a
        producer killed while holding it froze every other one, and the sender's exit."""
        self.sender_pid = context.RawValue(ctypes.c_int, 0)
        """The sender's pid once it runs (0 before). One writer, the sender; no lock, as for
        ``gone``."""
        self.ledger = ProducerLedger()
        """Open worker producers, and the records producers queued."""
        self.taken = context.RawValue(ctypes.c_longlong, 0)
        """Records the sender took off the pipe. Shared memory, so the owner still knows the
        number after the sender was killed; one writer (the sender), so no lock."""
        self.owner_pid = os.getpid()
        """The process that made the channel (and owns its transport and sender)."""
        self._watch_forks()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._watch_forks()

    def _watch_forks(self) -> None:
        # A child made by os.fork() (a pre-fork server) does not run multiprocessing's own
        # after-fork hooks, so the inherited report queue would keep the parent's dead feeder
        # thread and buffer: reset it in every forked child.
        in_fork_children(self, QueueChannel._reset_reports)

    def _reset_reports(self) -> None:
        self.reports._after_fork()  # type: ignore[attr-defined]

    # -- the sender's liveness ---------------------------------------------------------------

    def sender_alive(self) -> bool:
        """False once the sender has exited or died; True while it runs or is yet to start."""
        if self.gone.value:
            return False
        pid = self.sender_pid.value
        return pid == 0 or process_running(pid)

    def mark_sender_gone(self) -> None:
        """Tell every process that the sender has exited (``sender_alive`` is then False)."""
        self.gone.value = True

    def describe_sender(self) -> str:
        pid = self.sender_pid.value
        return f"the multiprocessing_queue sender of {self.spec.transport!r}" + (
            f" (pid {pid})" if pid else ""
        )

    # -- producers ---------------------------------------------------------------------------

    def producer_opened(self) -> int:
        """Count a worker producer open until ``producer_closed(slot)`` or its death."""
        return self.ledger.opened(process_running)

    def producer_closed(self, slot: int) -> None:
        self.ledger.closed(slot)

    def producers_open(self) -> int:
        """Worker producers that are open and still run: their frames may still arrive."""
        return len(self.ledger.open_pids(process_running))

    def count_queued(self, records: int) -> None:
        self.ledger.count_queued(records)

    def never_taken(self) -> int:
        """Records producers started writing that the sender has not taken: in the pipe, in
        the sender's backlog, or lost with a producer killed in the middle of its frame."""
        return max(self.ledger.queued - self.taken.value, 0)


def process_running(pid: int) -> bool:
    """Whether process ``pid`` runs (an exited child not yet reaped counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited child stays a zombie until its parent reaps it; count that as dead.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except OSError:
        return True


__all__ = [
    "STOP",
    "QueueChannel",
    "SenderSpec",
    "flush_request",
    "process_running",
    "stop_request",
]
