"""A ``BufferedConsumer``'s records, and what becomes of them at exit, after fork, when freed.

The records are held apart from the consumer (``Buffers``), so that they outlive it: freed
while holding records (built per web request, never flushed), it hands them to the one orphan
thread of the process, which sends them, unless ``MAX_ORPHANED_RECORDS`` already wait for it;
what is still held when the process exits is flushed then, every consumer's and every freed
one's within ``EXIT_FLUSH_SECONDS`` together; a ``fork()`` child starts with empty buffers and
its own orphan thread (the parent sends what it held). What cannot be delivered, or is
dropped, is logged at ERROR with its count.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mixpanel_core import wire
from mixpanel_core.compat import MixpanelException
from mixpanel_core.compat_arguments import OFFICIAL_TO_CORE
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.ingestion import Deadline, records_limit
from mixpanel_core.messages import Message
from mixpanel_core.process_exit import at_exit
from mixpanel_core.process_fork import in_fork_children

if TYPE_CHECKING:  # compat_consumers imports this module
    from mixpanel_core.compat_consumers import Consumer

# The consumers' name, under which their losses have always been logged (and are filtered).
logger = logging.getLogger("mixpanel_core.compat_consumers")

EXIT_FLUSH_SECONDS = 5.0
"""Bound of all sending by buffered consumers at interpreter exit, every consumer's and every
freed one's together (no request starts after it)."""

MAX_ORPHANED_RECORDS = 10_000
"""Most records of freed buffered consumers that may wait for the orphan thread (queued or
being sent); a consumer freed whose records would pass it has them all dropped, and their
count logged at ERROR. Counted in records, as records are the memory (about 1.5 KB each for
a 300-byte event) and one consumer may hold thousands; only one holding a record is queued,
so this also caps the consumers' own objects (about 4 KB each): with such events, some 50 MB
per process at worst."""

ORPHAN_REPORT_SECONDS = 1.0
"""How often the idle orphan thread wakes to log the records it had to drop."""


class Buffers:
    """A ``BufferedConsumer``'s records and the ``Consumer`` that sends them, apart from it so
    that they can still be sent once it is freed: by the orphan thread, or by its exit hook.

    ``records`` and ``lock`` are replaced in a ``fork()`` child; whoever holds this object
    sees the current ones.
    """

    def __init__(self, consumer: Consumer, max_size: int) -> None:
        self.consumer = consumer
        self.max_size = max_size
        self.records: dict[str, list[Message]] = {name: [] for name in OFFICIAL_TO_CORE}
        self.lock = threading.RLock()
        in_fork_children(self, _forget_in_child)

    def held(self) -> int:
        """Records buffered, not yet sent (or kept after failing).

        Read without the lock, as a finalizer must: the keys never change, so the values can
        be read while another thread replaces one.
        """
        return sum(map(len, self.records.values()))

    def add(self, endpoint: str, messages: list[Message]) -> None:
        core = OFFICIAL_TO_CORE[endpoint]
        with self.lock:
            buffer = self.records[endpoint]
            buffer.extend(messages)
            if len(buffer) >= min(self.max_size, records_limit(core)):
                self.flush_endpoint(endpoint)

    def flush_endpoint(self, endpoint: str, deadline: Deadline = None) -> None:
        """Send the endpoint's records; the caller holds ``lock``. Raises MixpanelException."""
        core = OFFICIAL_TO_CORE[endpoint]
        limit = min(self.max_size, records_limit(core))
        buffer = self.records[endpoint]
        while buffer:
            batch = buffer[:limit]
            try:
                self.consumer.send_messages(core, batch, deadline)
            except MixpanelException as error:
                self.records[endpoint] = _retryable(error.reports) + buffer[limit:]
                raised = MixpanelException(str(error), reports=error.reports)
                # The official class joins the texts it was given; rebuilt from the records as
                # the official client writes them, only now, rather than each text held twice.
                texts = ",".join(wire.dumps_official(m.record) for m in batch)
                raised.message = f"[{texts}]"
                raised.endpoint = endpoint
                raise raised from error
            buffer = buffer[limit:]
            self.records[endpoint] = buffer

    def send_or_log(self, deadline: Deadline, when: str) -> None:
        """Send everything, each endpoint whatever the others do; what fails is logged at
        ERROR (the count and the reasons, which the ingestion client redacted of the
        requests' credentials) and dropped, so that what the exit hook and the orphan thread
        both see is not logged twice. The caller holds ``lock``."""
        failures = []
        done_with = 0  # refused, or failed with nothing to send again: no longer held
        for endpoint in OFFICIAL_TO_CORE:
            try:
                self.flush_endpoint(endpoint, deadline)
            except MixpanelException as error:
                failures.append(f"{endpoint}: {error}")
                not_accepted = [r for r in error.reports if r.status is not DeliveryStatus.ACCEPTED]
                done_with += len(not_accepted) - len(_retryable(not_accepted))
        if failures:
            logger.error(
                "BufferedConsumer: %d record(s) not delivered %s (%s)",
                self.held() + done_with,
                when,
                "; ".join(failures),
            )
            self.records = {name: [] for name in OFFICIAL_TO_CORE}


def _retryable(reports: Sequence[DeliveryReport]) -> list[Message]:
    """What may succeed later (FAILED); accepted and rejected records are done."""
    return [
        r.message for r in reports if r.status is DeliveryStatus.FAILED and r.message is not None
    ]


def _forget_in_child(buffers: Buffers) -> None:
    # The parent still holds, and will send, what was buffered before the fork: a child that
    # kept its copy would send every record twice. A lock held at fork() stays held: renew it.
    buffers.records = {name: [] for name in OFFICIAL_TO_CORE}
    buffers.lock = threading.RLock()


def hand_over(buffers: Buffers, cancel_exit_flush: Callable[[], None]) -> None:
    """A ``BufferedConsumer`` was freed: what it holds goes to the orphan thread.

    The garbage collector may call this on any thread, at any allocation, even inside a lock
    that thread holds: so no I/O, no lock, no log, no thread started here. Putting on a
    SimpleQueue is safe there; cancelling the exit hook only updates two registries.
    """
    records = buffers.held()
    if records and orphan_thread.admit(records):
        orphan_thread.queue.put((buffers, cancel_exit_flush, records))
    else:
        # Nothing to send, or no room (the orphan thread logs the count dropped): leave no
        # hook, and so nothing of this consumer, for the life of the process.
        cancel_exit_flush()


_Orphan = tuple[Buffers, Callable[[], None], int]
"""What a freed ``BufferedConsumer`` held, the function that cancels its exit hook, and how
many records it held when handed over."""


class _OrphanThread:
    """The one thread of the process that sends what freed buffered consumers held.

    Started when the first ``BufferedConsumer`` is built (a finalizer cannot start it), and
    again in each ``fork()`` child. Each orphan keeps its exit hook until sent, so what this
    thread has not sent when the process exits is sent then, by that hook. At most
    ``MAX_ORPHANED_RECORDS`` wait for it; the count of those dropped beyond is logged by the
    thread, or at exit.
    """

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[_Orphan] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._reset_counts()

    def _reset_counts(self) -> None:
        # Plain ints, each written on one side only, so that no update overwrites another's
        # without a lock (which a finalizer cannot take): ``admitted`` and ``dropped`` by
        # ``admit``, ``finished`` by the thread, ``reported`` under ``_reporting``.
        self.admitted = 0
        """Records ever queued."""
        self.finished = 0
        """Records of the orphans the thread is done with (sent, logged or sent at exit)."""
        self.dropped = 0
        """Records refused because ``MAX_ORPHANED_RECORDS`` were waiting."""
        self.reported = 0
        """Of ``dropped``, those already logged."""
        self._reporting = threading.Lock()

    def waiting(self) -> int:
        """Records of freed consumers queued or being sent."""
        return self.admitted - self.finished

    def admit(self, records: int) -> bool:
        """Whether a freed consumer's ``records`` may be queued; if not, they count as dropped.

        Called by finalizers only (see ``hand_over``). Two on two threads could undo each
        other's update if one ran between a read and a write here; CPython switches threads
        (and collects garbage) only at calls, loop jumps and container allocations, and these
        lines have none.
        """
        if self.admitted - self.finished + records > MAX_ORPHANED_RECORDS:
            self.dropped += records
            return False
        self.admitted += records
        return True

    def report_dropped(self) -> None:
        """Log at ERROR the records dropped since the last report; by the thread and at exit."""
        with self._reporting:
            dropped = self.dropped
            new, self.reported = dropped - self.reported, dropped
        if new:
            logger.error(
                "BufferedConsumer: %d record(s) dropped, not sent: their consumers were freed "
                "without flush() when the records of others waiting to be sent had reached "
                "the bound (MAX_ORPHANED_RECORDS = %d); call flush() before dropping a "
                "consumer, or build the client once and reuse it",
                new,
                MAX_ORPHANED_RECORDS,
            )

    def start(self) -> None:
        with self._starting:
            if self._thread is None:
                # Once: a fork() child inherits both registrations, its grandchildren too.
                in_fork_children(self, _OrphanThread._start_in_child)
                at_exit(self.report_dropped)
                self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=_deliver_orphans,
            args=(self,),
            name="mixpanel-compat-orphans",
            daemon=True,  # never holds the process up: exit hooks send what is left
        )
        self._thread.start()

    def _start_in_child(self) -> None:
        # The parent sends the orphans it queued (and the child's copies of their buffers are
        # emptied by ``_forget_in_child``); its thread, and the queue's lock, did not survive
        # the fork: a new queue and a new thread.
        self.queue = queue.SimpleQueue()
        self._starting = threading.Lock()
        self._reset_counts()  # the parent's orphans and drops are its own
        self._start()


def _deliver_orphans(orphans: _OrphanThread) -> None:
    while True:
        orphans.report_dropped()
        try:
            buffers, cancel_exit_flush, records = orphans.queue.get(timeout=ORPHAN_REPORT_SECONDS)
        except queue.Empty:
            continue
        try:
            with buffers.lock:
                # Until the process exits no deadline; then the exit hooks' one, read again
                # while a request is out, so that this thread ends when they must.
                buffers.send_or_log(
                    _exit_clock.read, "after the consumer was freed without flush()"
                )
        except Exception:  # the thread must outlive any one orphan
            logger.exception(
                "BufferedConsumer: %d record(s) of a freed consumer not delivered",
                buffers.held(),
            )
        finally:
            cancel_exit_flush()
            # The count handed over, not ``held()``: the records an exit hook sent meanwhile
            # are gone from ``buffers`` but were counted as waiting.
            orphans.finished += records
        del buffers, cancel_exit_flush  # waiting for the next, keep nothing of this one


orphan_thread = _OrphanThread()


class _ExitClock:
    """The one deadline of all sending at exit, by every consumer's exit hook and by the
    orphan thread: many consumers, or orphans, still add up to one bound."""

    def __init__(self) -> None:
        self.deadline: float | None = None

    def start(self) -> float:
        if self.deadline is None:
            self.deadline = time.monotonic() + EXIT_FLUSH_SECONDS
        return self.deadline

    def read(self) -> float | None:
        return self.deadline


_exit_clock = _ExitClock()

EXIT_LOCK_GRACE_SECONDS = 1.0
"""Beyond the exit deadline, how long an exit hook waits for a sender to notice it passed."""


def flush_at_exit(buffers: Buffers) -> None:
    """The exit hook of a ``BufferedConsumer``'s buffers: sends what they hold, all consumers
    within one shared deadline (``EXIT_FLUSH_SECONDS``), and logs what it could not."""
    if not buffers.held():
        return
    deadline = _exit_clock.start()
    # The orphan thread may be sending these very records: it stops at the same deadline.
    wait = max(deadline - time.monotonic(), 0.0) + EXIT_LOCK_GRACE_SECONDS
    if not buffers.lock.acquire(timeout=wait):
        logger.error(
            "BufferedConsumer: %d record(s) not delivered at exit (still being sent)",
            buffers.held(),
        )
        return
    try:
        buffers.send_or_log(deadline, "at exit")
    finally:
        buffers.lock.release()
