"""``QueueChannel``: what producers, the sender and the owning process share.

The pieces are ``multiprocessing`` objects made from the ``spawn`` context, so that they can
be handed to children started by any method: inherited by ``fork`` children, pickled (as
``Process`` arguments) to ``spawn`` and ``forkserver`` ones. Like ``multiprocessing.Queue``,
a channel can only be passed to a child when it is started, never sent over a queue.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import threading
import weakref
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import attrs

from mixpanel_core.config import Config
from mixpanel_core.multiprocess.options import MultiprocessingQueueOptions

logger = logging.getLogger(__name__)

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


def flush_request(token: int) -> tuple[str, int]:
    """Queued by the owner's ``flush``: the sender flushes its inner transport and answers."""
    return ("flush", token)


@attrs.frozen
class SenderSpec:
    """What the sender process needs to build its inner transport."""

    transport: str
    """The ``multiprocessing_queue`` transport's own name, for reports and errors."""
    inner: str
    config: Config


class QueueChannel:
    """The bounded frame queue, the report queue and the sender's liveness, shared."""

    def __init__(self, options: MultiprocessingQueueOptions, spec: SenderSpec) -> None:
        context = multiprocessing.get_context("spawn")
        self.options = options
        self.spec = spec
        self.frames: Queue[Any] = context.Queue(options.queue_batches)
        """Frames (bytes) from producers and control tuples from the owner."""
        self.reports: Queue[Any] = context.Queue()
        """Report batches and answers from the sender to the owner."""
        self.gone = context.Event()
        """Set once the sender has exited (by itself, or by the owner that saw it die)."""
        self.sender_pid: Synchronized[int] = context.Value("i", 0)
        self.open_producers: Synchronized[int] = context.Value("i", 0)
        self.unsure_producers: Synchronized[int] = context.Value("i", 0)
        """Worker producers that closed without knowing their last frames were written."""
        self.queued: Synchronized[int] = context.Value(ctypes.c_longlong, 0)
        """Records producers put on the queue (less those dropped from it): with ``taken``,
        what was queued but never reached the sender. Counted per frame, not per record."""
        self.taken = context.RawValue(ctypes.c_longlong, 0)
        """Records the sender took off the queue. Shared memory, so the owner still knows the
        number after the sender was killed; one writer (the sender), so no lock."""
        self.owner_pid = os.getpid()
        """The process that made the channel (and owns its transport and sender)."""
        self._watch_forks()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._watch_forks()

    def _watch_forks(self) -> None:
        # A child made by os.fork() (a pre-fork server) does not run multiprocessing's own
        # after-fork hooks, so the inherited queue would keep the parent's dead feeder thread
        # and buffer. Reset this channel's queues in every forked child; the weak reference
        # keeps the hook from holding the channel alive.
        ref = weakref.ref(self)

        def reset_in_child() -> None:
            channel = ref()
            if channel is not None:
                channel.frames._after_fork()  # type: ignore[attr-defined]
                channel.reports._after_fork()  # type: ignore[attr-defined]

        os.register_at_fork(after_in_child=reset_in_child)

    # -- the sender's liveness ---------------------------------------------------------------

    def sender_alive(self) -> bool:
        """False once the sender has exited or died; True while it runs or is yet to start."""
        if self.gone.is_set():
            return False
        pid = self.sender_pid.value
        return pid == 0 or _process_running(pid)

    def describe_sender(self) -> str:
        pid = self.sender_pid.value
        return f"the multiprocessing_queue sender of {self.spec.transport!r}" + (
            f" (pid {pid})" if pid else ""
        )

    # -- producers ---------------------------------------------------------------------------

    def producer_opened(self) -> None:
        with self.open_producers.get_lock():
            self.open_producers.value += 1

    def producer_closed(self) -> None:
        with self.open_producers.get_lock():
            self.open_producers.value -= 1

    def producer_closed_unsure(self) -> None:
        """A producer closed, but its last frames may not all be in the pipe (its feeder
        was still writing): frames may still follow, so the sender must not stop at once."""
        with self.unsure_producers.get_lock():
            self.unsure_producers.value += 1
        self.producer_closed()

    def count_queued(self, records: int) -> None:
        # Bounded: a producer killed while holding this lock must not wedge the others; a
        # count skipped then only makes the owner's loss estimate low, and is logged.
        lock = self.queued.get_lock()
        if not lock.acquire(timeout=1.0):
            logger.warning("the queued-records count is held by a dead producer; not counted")
            return
        try:
            self.queued.value += records
        finally:
            lock.release()

    def never_taken(self) -> int:
        """Records put on the queue that the sender has not taken (queued, or lost in it)."""
        return max(self.queued.value - self.taken.value, 0)

    def producers_not_done(self) -> int:
        """Producers whose frames may still arrive (open, or closed unsure)."""
        return max(self.open_producers.value, 0) + self.unsure_producers.value

    def join_feeder(self, timeout: float) -> bool:
        """Wait until this process's queued frames are in the pipe; False if that timed out.

        ``multiprocessing.Queue`` writes from a feeder thread that blocks on a full pipe; if
        the sender is dead it would block forever, and so would the process's exit. So the
        join runs in a helper thread that is given up on after ``timeout``.
        """
        self.frames.close()
        joiner = threading.Thread(target=self.frames.join_thread, daemon=True)
        joiner.start()
        joiner.join(timeout)
        if joiner.is_alive():
            self.frames.cancel_join_thread()
            return False
        return True

    def take_unwritten_frames(self) -> list[bytes]:
        """Take back the frames this process queued that its feeder has not started writing.

        Called after ``join_feeder`` gave up: those frames would otherwise be lost with the
        process, unreported. The feeder pops from the same deque (atomically), so a frame is
        taken either here or by the feeder, never both. Each frame taken gives its slot in
        the bounded queue back. The frame being written, if any, is not among them.
        """
        # multiprocessing.Queue's own buffer, semaphore and condition: private attributes
        # (stable through CPython 3.11-3.13), read because the queue offers no way to take
        # back what its feeder thread has not written yet.
        buffer = self.frames._buffer  # type: ignore[attr-defined]
        taken: list[bytes] = []
        others: list[object] = []
        while True:
            try:
                item = buffer.popleft()
            except IndexError:
                break
            if isinstance(item, bytes):
                taken.append(item)
                self.frames._sem.release()  # type: ignore[attr-defined]
                self.count_queued(-(item.count(b"\n") + 1))
            else:
                others.append(item)  # the close sentinel: leave it for the feeder
        if others:
            with self.frames._notempty:  # type: ignore[attr-defined]
                buffer.extend(others)
                self.frames._notempty.notify()  # type: ignore[attr-defined]
        return taken


def _process_running(pid: int) -> bool:
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


__all__ = ["STOP", "QueueChannel", "SenderSpec", "flush_request", "stop_request"]
