"""Buffering, written once: a bounded queue with a full policy, and the background sender.

``BoundedQueue`` is a FIFO bounded by item count and by bytes; when full it blocks (up to a
timeout), drops the newest or drops the oldest, and hands every dropped item to a callback.
Any transport that queues (``buffered_http``, ``multiprocessing_queue``) uses it.

``BackgroundSender`` puts that queue in front of the ingestion client: ``submit()`` only
enqueues; one sender thread drains the queue into per-endpoint batches (up to Mixpanel's limits,
or whatever arrived within ``linger``), and reports every outcome. Records that still fail
after the retry budget, or are rejected, go to the dead-letter file. ``flush``/``close`` are
bounded, a bounded ``close`` runs at interpreter exit, and after ``fork()`` the child forgets
the parent's queue (the parent delivers it) and starts its own sender on its first message.
A sender dropped without ``close`` delivers what it holds, then its thread ends.

The queue holds each message's JSON, and the message itself only when something needs it
later (a reader of reports, ``/import`` credentials); a message not kept is rebuilt from its
JSON in the rare case it is needed (it failed, ``flush`` returns it).
"""

from __future__ import annotations

import collections
import itertools
import logging
import operator
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, Literal, TypeVar

import attrs

from mixpanel_core.dead_letter import DeadLetterFile
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter, reports_for
from mixpanel_core.errors import (
    AuthenticationError,
    Problem,
    QueueFullError,
    TransportError,
    ValidationError,
)
from mixpanel_core.ingestion import (
    EncodedPair,
    IngestionClient,
    Outcome,
    records_limit,
    split_encoded,
)
from mixpanel_core.ingestion.encoding import message_in
from mixpanel_core.messages import ENDPOINTS, Endpoint, Message
from mixpanel_core.process_exit import at_exit, exit_time_left
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.schema import check_seconds, setting
from mixpanel_core.transport import bounded, ignore_report
from mixpanel_core.weak import weakly

logger = logging.getLogger(__name__)

T = TypeVar("T")
Record = tuple[Endpoint, Message | None, bytes]
"""What the sender's queue holds per message: its endpoint, the message itself only when it
is kept (see ``BackgroundSender.submit``), and its JSON."""
WhenFull = Literal["block", "drop_newest", "drop_oldest"]
MIB = 1024 * 1024

IDLE_RECHECK = 1.0
"""Most seconds an idle sender thread waits before it checks again that its sender exists:
the backstop for the rare wake-up the sender's finalizer could not give (``BoundedQueue.finish``
never waits for the lock)."""


# Not slotted, so a transport can combine option classes by inheritance.
@attrs.frozen(slots=False)
class BufferOptions:
    """How much a buffered transport may hold, what it does when full, and its time bounds."""

    max_queue_messages: int = setting(100_000, doc="Most messages held before `when_full` applies.")
    max_queue_bytes: int = setting(
        256 * MIB,
        doc="Approximate memory (bytes) the queue may hold before `when_full` applies; each "
        "message counts its JSON size plus 160 bytes, or about 9x its JSON size plus 512 "
        "bytes while the message itself is kept (some plugin reads delivery reports, or it "
        "goes to `/import`).",
    )
    when_full: WhenFull = setting(
        "block",
        doc="`block`: the caller waits up to `block_timeout`, then gets a QueueFullError; "
        "`drop_newest`: the new message is dropped; `drop_oldest`: the oldest ones make room. "
        "Every drop is counted and reported as DROPPED.",
    )
    block_timeout: float = setting(1.0, doc="Seconds `send` may wait for room under `block`.")
    linger: float = setting(
        0.25, doc="Seconds the sender waits for a batch to fill before sending what it has."
    )
    flush_timeout: float = setting(
        30.0, doc="Bound (seconds) of `flush()`/`close()` called without a timeout."
    )
    exit_timeout: float = setting(
        5.0,
        doc="Bound (seconds) of the flush at interpreter exit, counted from the start of exit: "
        "the exit closes of several buffered transports all end within the largest "
        "`exit_timeout`, not their sum (each has at least 1 s, see *Interpreter exit*); 0 "
        "turns it off.",
    )
    dead_letter_path: str | None = setting(
        None,
        doc="JSON-lines file that receives every record rejected, or failed after the retry "
        "budget, with the reason. Unset: such records are only reported and logged.",
    )

    def __attrs_post_init__(self) -> None:
        for key in ("max_queue_messages", "max_queue_bytes"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key}: must be greater than 0")
        for key in ("block_timeout", "linger", "flush_timeout", "exit_timeout"):
            check_seconds(key, getattr(self, key))
        if self.dead_letter_path is not None and not self.dead_letter_path.strip():
            # Only a missing key means no file: an empty one is a ${VAR} set to "", say.
            raise ValueError(
                "dead_letter_path: must not be empty or blank; leave the key out to keep no "
                "dead-letter file"
            )


def _no_owner() -> None:
    return None


def _held_by_caller(lock: threading.RLock) -> bool:
    """Whether the calling thread holds ``lock``: the lock's own C check, ``Condition``'s too."""
    held: bool = lock._is_owned()  # type: ignore[attr-defined]
    return held


class BoundedQueue(Generic[T]):
    """A FIFO bounded by count and bytes, safe from many threads; see the module docstring.

    ``on_drop(items, reason)`` is called, outside the lock, with whatever a full policy drops;
    the queue logs the first drop and every thousandth (``name`` leads the line).
    The consumer is woken when the first item arrives and when ``wake_at`` items are queued,
    not on every put, so a busy producer does not ping-pong the GIL with it. Once ``close``d it
    takes nothing more: ``put`` and ``put_many`` raise ``TransportError``; once ``finish``ed,
    the consumer's waits return at once, and it ends when it has taken everything.

    ``owner``, if given, is kept alive while the queue holds items, and only then: a consumer
    thread that holds the queue (and its owner only weakly) lets an idle owner be freed, while
    one dropped with items queued lives until they are taken (see ``BackgroundSender``).

    A thread already inside the queue (a signal handler that interrupted its ``put``) is
    refused with ``TransportError`` rather than let in: see ``held_here``. ``consumer``, once
    set, is the thread that takes; under ``block`` it is refused at once, never made to wait
    for room that only it could make.
    """

    def __init__(
        self,
        max_items: int,
        max_bytes: int,
        when_full: WhenFull,
        block_timeout: float,
        on_drop: Callable[[list[T], str], None],
        wake_at: int = 1,
        owner: object | None = None,
        name: str = "queue",
    ) -> None:
        self.name = name
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.when_full = when_full
        self.block_timeout = block_timeout
        self.wake_at = max(1, wake_at)
        self._on_drop = on_drop
        self._owner: Callable[[], object] = _no_owner if owner is None else weakref.ref(owner)
        self._reset()

    def _reset(self) -> None:
        # Items and their sizes side by side, so ``take`` can hand over a whole queue at once.
        self._items: deque[T] = deque()
        self._sizes: deque[int] = deque()
        self._bytes = 0
        # Reentrant only so that its owner can be asked (``held_here``): a thread is never let
        # in twice. The check is one C call, and only a reentrant lock knows its owner.
        self._lock = threading.RLock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._closed: str | None = None
        """Why the queue takes nothing more (see ``close``), or ``None`` while it is open."""
        self.consumer: threading.Thread | None = None
        """The thread that takes from the queue, once it is started (see ``_put_when_full``)."""
        self._finished = False
        """Whether the consumer is to end once it has taken everything (see ``finish``)."""
        self._kept: object = None
        """The owner while any item is queued, ``None`` while the queue is empty."""
        self.total_put = 0
        """Items ever enqueued."""
        self.total_evicted = 0
        """Items enqueued and later dropped by ``drop_oldest``."""
        self.total_dropped = 0
        """Items dropped by any policy."""

    def held_here(self) -> bool:
        """Whether the calling thread is inside the queue (holds its lock): a signal handler
        that interrupted a ``put`` of its thread. Whatever the handler then called would wait
        for that very ``put`` forever, or change the queue in the middle of it."""
        return _held_by_caller(self._lock)

    def reset_after_fork(self) -> None:
        """Forget everything: locks may be held by parent threads that do not exist here."""
        self._reset()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def removed(self) -> int:
        """Items ever removed (taken or evicted), which is also the sequence number (counted
        by ``total_put`` from 0) of the oldest item queued: both remove from the front."""
        with self._lock:
            return self.total_put - len(self._items)

    def _fits(self, size: int) -> bool:
        return len(self._items) < self.max_items and self._bytes + size <= self.max_bytes

    def _append(self, item: T, size: int) -> None:
        """Enqueue (lock held), waking the consumer on the first item and at ``wake_at``.

        ``put`` has it written out, for the usual case: a change here goes there too."""
        self._items.append(item)
        self._sizes.append(size)
        self._bytes += size
        self.total_put += 1
        count = len(self._items)
        if count in (1, self.wake_at):
            if count == 1:
                self._kept = self._owner()
            self._not_empty.notify()

    def close(self, reason: str) -> None:
        """Take nothing more from now on; ``reason`` is the ``TransportError`` puts raise.

        Producers waiting for room under ``block`` are woken and refused: what they hold is
        still theirs (they get the error), never left behind in a queue nobody drains.
        """
        with self._lock:
            self._closed = reason
            self._not_full.notify_all()

    @property
    def finished(self) -> bool:
        return self._finished

    def finish(self) -> None:
        """Tell the consumer to end once it has taken everything (its owner closes, or is gone).

        Safe from a finalizer, which may run on any thread at any allocation, also on one that
        holds this very lock: it never waits for the lock, and notifies only when it is free
        at once. A consumer that misses the notification sees the flag at its next check (its
        idle wait is bounded).
        """
        self._finished = True
        # Reentrant, the lock would let the thread that holds it in again: checked first.
        if not self.held_here() and self._lock.acquire(blocking=False):
            try:
                self._not_empty.notify_all()
            finally:
                self._lock.release()

    def put(self, item: T, size: int) -> None:
        """Enqueue ``item`` of ``size`` bytes, applying the full policy if there is no room.

        Raises ``QueueFullError`` under ``block`` when no room appeared within the timeout (or
        cannot: the item is bigger than the byte bound, or this is the consumer's thread), and
        ``TransportError`` once closed, or when called from inside the queue (``held_here``).
        """
        # Once per message in the caller's thread: the usual case (room) is kept this short,
        # with ``held_here`` and ``_append`` written out (a call less each).
        lock = self._lock
        if lock._is_owned():  # type: ignore[attr-defined]
            raise TransportError(self._reentered())
        with lock:
            items = self._items
            if (
                len(items) < self.max_items
                and self._bytes + size <= self.max_bytes
                and self._closed is None
            ):
                items.append(item)
                self._sizes.append(size)
                self._bytes += size
                self.total_put += 1
                count = len(items)
                if count in (1, self.wake_at):
                    if count == 1:
                        self._kept = self._owner()
                    self._not_empty.notify()
                return
        self._put_when_full(item, size)

    def put_many(self, items: Sequence[T], sizes: Sequence[int]) -> None:
        """Enqueue ``items`` in order (``sizes`` alongside), as ``put`` would one by one.

        When they all fit, the usual case, they go in under one lock. Otherwise each goes
        through the full policy, and once one is refused under ``block`` the rest are refused
        with it rather than each waiting out the timeout again. Raises ``TransportError``
        only when closed before any was taken; otherwise whatever is refused (also by a
        ``close`` that comes while one waits for room) is handed to ``on_drop``.
        """
        total = sum(sizes)
        if self.held_here():
            raise TransportError(self._reentered())
        with self._lock:
            if self._closed is not None:
                raise TransportError(self._closed)
            before = len(self._items)
            after = before + len(items)
            if after <= self.max_items and self._bytes + total <= self.max_bytes:
                self._items.extend(items)
                self._sizes.extend(sizes)
                self._bytes += total
                self.total_put += len(items)
                if before == 0:
                    self._kept = self._owner()
                if before == 0 or before < self.wake_at <= after:
                    self._not_empty.notify()
                return
        for index, (item, size) in enumerate(zip(items, sizes, strict=True)):
            try:
                self.put(item, size)
            except QueueFullError:
                if size > self.max_bytes:
                    continue  # refused for its own size, at once: the rest may well fit
                rest = list(items[index + 1 :])
                if rest:
                    with self._lock:
                        dropped = self._count_dropped(len(rest))
                    reason = "dropped: the queue stayed full for an earlier record of its batch"
                    self._hand_dropped(rest, reason, dropped)
                return
            except TransportError as error:
                if index == 0:
                    raise  # closed before any was taken: the caller still holds them all
                # Closed while this one waited for room, after earlier ones were taken (they
                # are delivered or given up by ``close``). Raising would tell the caller none
                # was taken, and it would report those a second time: refuse the rest here.
                rest = list(items[index:])
                with self._lock:
                    dropped = self._count_dropped(len(rest))
                self._hand_dropped(rest, f"dropped: {error}", dropped)
                return

    def _put_when_full(self, item: T, size: int) -> None:
        evicted: list[T] = []
        # Why the item is refused, and what would help (said only under ``block``).
        refused: tuple[str, str] | None = None
        with self._lock:
            if self._closed is not None:
                raise TransportError(self._closed)
            if size > self.max_bytes:
                # Bigger than the whole byte bound, it can never fit, however long one waits
                # or whatever is evicted: refused at once, and told so (not "stayed full").
                refused = (
                    f"dropped: the record counts {size} bytes, more than max_queue_bytes "
                    f"({self.max_bytes}) allows the whole queue: it can never be queued; "
                    "raise max_queue_bytes to take it",
                    "waiting longer (a larger block_timeout) cannot help",
                )
            # Checked again: the consumer may have made room since ``put`` looked.
            elif not self._fits(size):
                if self.when_full == "drop_oldest":
                    while self._items and not self._fits(size):
                        evicted.append(self._items.popleft())
                        self._bytes -= self._sizes.popleft()
                    self.total_evicted += len(evicted)
                elif self.when_full == "drop_newest":
                    refused = (f"dropped: the queue was full ({self._held()}; drop_newest)", "")
                elif self.consumer is not None and threading.current_thread() is self.consumer:
                    # Only the consumer makes room: waiting for it here would hold it up for
                    # the whole timeout, and everything behind it (a delivery report hook
                    # that sends, on the sender thread).
                    refused = (
                        f"dropped: the queue was full ({self._held()}) and the send came from the "
                        "sender's own thread (a mixpanel_delivered hook?), which alone makes "
                        "room: it cannot wait for it",
                        "send from another thread, or raise max_queue_messages/max_queue_bytes",
                    )
                else:
                    self._not_full.wait_for(
                        lambda: self._fits(size) or self._closed is not None, self.block_timeout
                    )
                    if self._closed is not None:
                        raise TransportError(self._closed)
                    if not self._fits(size):
                        refused = (
                            f"dropped: the queue stayed full ({self._held()}) for "
                            f"{self.block_timeout}s",
                            "raise max_queue_messages/max_queue_bytes or block_timeout, or "
                            "choose when_full = 'drop_newest' or 'drop_oldest'",
                        )
            if refused is None:
                self._append(item, size)
            # Counted with the drop, under the lock: ``_hand_dropped`` logs from these totals.
            evicted_total = self._count_dropped(len(evicted))
            refused_total = self._count_dropped(refused is not None)
        if evicted:
            self._hand_dropped(evicted, "dropped: the queue was full (drop_oldest)", evicted_total)
        if refused is not None:
            reason, remedy = refused
            self._hand_dropped([item], reason, refused_total)
            if self.when_full == "block":
                raise QueueFullError(f"{reason}; {remedy}")

    def _held(self) -> str:
        return f"{len(self._items)} messages, {self._bytes} bytes"

    def _count_dropped(self, count: int) -> int:
        """Count ``count`` items dropped (lock held); the total with them."""
        self.total_dropped += count
        return self.total_dropped

    def _hand_dropped(self, items: list[T], reason: str, total: int) -> None:
        """Log (the first drop and every thousandth) and hand ``items`` to ``on_drop``.

        ``total`` is the count with these items, taken under the lock as they were counted:
        read here instead, drops of other threads meanwhile made every thread skip the line.
        """
        # The first drop and every thousandth after it: enough to notice, not a log flood.
        if total <= len(items) or total // 1000 != (total - len(items)) // 1000:
            logger.warning("%s: %s (%d dropped so far)", self.name, reason, total)
        self._on_drop(items, reason)

    def _reentered(self) -> str:
        return (
            f"{self.name}: a message was sent while this thread is inside the queue (from a "
            "signal handler that interrupted send()?): it cannot be taken in the middle of "
            "that send(); send it from the code the handler returns to"
        )

    def take(self, max_items: int) -> list[T]:
        """Up to ``max_items`` items from the front, without waiting."""
        with self._lock:
            if max_items >= len(self._items):
                # The usual case while the sender keeps up: everything, in one C-level copy.
                taken = list(self._items)
                self._items.clear()
                self._sizes.clear()
                self._bytes = 0
                # Never the owner's last reference: whoever takes holds the owner too.
                self._kept = None
            else:
                # popleft called by C iterators: no Python step per item.
                calls = itertools.repeat((), max_items)
                taken = list(itertools.starmap(self._items.popleft, calls))
                calls = itertools.repeat((), max_items)
                self._bytes -= sum(itertools.starmap(self._sizes.popleft, calls))
            if taken:
                self._not_full.notify_all()
            return taken

    def snapshot(self) -> list[T]:
        """The queued items, oldest first, left in place."""
        with self._lock:
            return list(self._items)

    def wait_until(self, ready: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``len(self) >= wake_at`` or ``ready()`` (checked under the lock)."""
        with self._lock:
            return self._not_empty.wait_for(
                lambda: len(self._items) >= self.wake_at or ready(), timeout
            )

    def wait_not_empty(self, timeout: float) -> None:
        """Wait until an item is queued or the queue is ``finish``ed, at most ``timeout``."""
        with self._lock:
            self._not_empty.wait_for(lambda: bool(self._items) or self._finished, timeout)

    def wake(self) -> None:
        """Wake the consumer so it re-checks its ``ready`` condition (flush, close)."""
        with self._lock:
            self._not_empty.notify_all()


RECORD_OVERHEAD = 160
"""Bytes the queue's own objects take per record (its tuple and the bytes object's header)."""


def held_bytes(data: bytes, with_message: bool) -> int:
    """Approximate memory one queued record holds: its JSON and the queue's own objects,
    plus, when the message is kept, its frozen record (about eight times its JSON size,
    measured on typical events).

    Counting this rather than the JSON alone makes ``max_queue_bytes`` a memory bound."""
    return 9 * len(data) + 512 if with_message else len(data) + RECORD_OVERHEAD


_SETTLING_GRACE = 2.0
"""Most seconds ``close`` waits for a thread it stopped in a retry wait to settle that call
(see ``close``); no request is out then, so it normally takes well under a millisecond."""

_NOT_SENT_AFTER_CLOSE = "not sent: close() timed out first"


class BackgroundSender:
    """Queues messages and delivers them from one background thread; see the module docstring.

    ``submit`` and ``submit_records`` are safe from any thread. ``flush``/``close`` return the
    messages that could not be delivered in time (``close`` also reports them FAILED and
    dead-letters them).

    ``report`` receives a report for every record not delivered, and with ``observed`` (by
    default: ``report`` is not ``ignore_report``) one for every record accepted too.

    A sender dropped without ``close`` (a client built per web request, as official-SDK code
    often does) is not kept forever by its thread: it delivers what it holds as usual, then
    its thread ends and its connections are closed (see ``_send_while_owned``).
    """

    def __init__(
        self,
        client: IngestionClient,
        options: BufferOptions | None = None,
        *,
        name: str = "buffered_http",
        report: Reporter = ignore_report,
        observed: bool | None = None,
    ) -> None:
        self.client = client
        self.options = options or BufferOptions()
        self.name = name
        self._report = report
        self._observed = report is not ignore_report if observed is None else observed
        """Whether anyone reads reports of accepted records (and so wants their messages)."""
        self._batch_records = client.options.max_batch_records
        # The sender thread holds the queue: neither the queue nor its drop callback may hold
        # this sender strongly, except while records are queued (``owner``).
        self._queue: BoundedQueue[Record] = BoundedQueue(
            self.options.max_queue_messages,
            self.options.max_queue_bytes,
            self.options.when_full,
            self.options.block_timeout,
            # The queue calls it in a producer's ``submit``, which holds this sender.
            weakly(self._dropped),
            wake_at=self._batch_records,
            owner=self,
            name=name,
        )
        path = self.options.dead_letter_path
        key = f"transports.{name}.dead_letter_path"
        self._dead_letter = DeadLetterFile(path, key) if path is not None else None
        self._closed = False
        self._cancel_exit_close: Callable[[], None] | None = None
        """Set when the thread first starts: a sender that never took a record has nothing to
        deliver at exit, and leaves no exit hook behind when it is dropped."""
        self._reset_sender()
        in_fork_children(self, BackgroundSender._after_fork)
        # Freed means idle (the queue keeps a sender with records alive): the thread may end.
        # At exit the bounded close does the work, so the finalizer does not run then.
        weakref.finalize(self, self._queue.finish).atexit = False

    def _reset_sender(self) -> None:
        # Reentrant only so that its owner can be asked, as the queue's lock (``flush``).
        self._state_lock = threading.RLock()
        self._state = threading.Condition(self._state_lock)
        self._take_from: int | None = None
        """``BoundedQueue.removed`` just before the take being delivered (the sequence number
        of its first record, or less), ``None`` between takes: what ``flush`` waits for."""
        self._in_flight: list[Record] = []
        self._urgent = 0
        self._abandoned = False
        self._abort = threading.Event()
        self._in_retry_wait = False
        """Whether the thread is in a retry wait, or on its way out of one ``close`` cut short
        (then until the thread ends): it has no request out (see ``close``)."""
        self._stopped_call_settled = threading.Event()
        """Set once the thread settled the call it was in when ``close`` gave up waiting for
        it (and the rest of that take): nothing of it is in flight any more."""
        self._settled_in_call: list[Outcome] = []
        """What the client announced settled in the request being sent (see ``_settled_now``),
        up to the moment ``close`` abandons the thread."""
        self._failed_after_abort: list[Message] = []
        """The messages this thread settled FAILED once ``close`` gave up waiting for it, up to
        the moment it abandons the thread: ``close`` returns them with the ones it gives up on
        itself."""
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _after_fork(self) -> None:
        # The parent still holds and will deliver what was queued before the fork; the child
        # starts empty, with fresh locks, and starts its own thread on its first message.
        self._queue.reset_after_fork()
        self._reset_sender()
        if self._dead_letter is not None:
            self._dead_letter.reset_after_fork()

    # -- the caller's side ----------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Messages dropped by the full policy so far (each was also reported DROPPED)."""
        return self._queue.total_dropped

    def __len__(self) -> int:
        """Messages queued or being sent."""
        return len(self._queue) + len(self._in_flight)

    def submit(self, message: Message) -> None:
        """Enqueue ``message``; raises ``QueueFullError`` under ``block`` after the timeout."""
        endpoint = message.endpoint
        # The message is kept only when it is needed later: by a reader of reports, or for
        # /import, whose credentials may come with the call rather than in the JSON. Without
        # it the queue holds bytes, which the garbage collector never walks (a queue of
        # messages made it walk every record while it waited: measured in a burst of 100,000
        # events, 2 to 3 us each, half as much again as track()), and the message is freed
        # at once, in the caller's thread.
        data = message.json()
        if self._closed or self._thread is None:
            self._ready_to_take()
        if self._observed or endpoint == "import":
            self._queue.put((endpoint, message, data), held_bytes(data, True))
        else:
            # held_bytes(data, False), written out: this runs once per tracked event.
            self._queue.put((endpoint, None, data), len(data) + RECORD_OVERHEAD)

    def submit_records(self, endpoint: Endpoint, records: Sequence[bytes]) -> None:
        """Enqueue records already validated and encoded elsewhere (each its compact JSON).

        For senders relaying records another process checked (the ``multiprocessing_queue``
        sender): each is sent as it is, and all go in under one lock when they fit. A record
        the full policy refuses is reported DROPPED, not raised (under ``block``, the ones
        after it are refused with it, as are the rest when ``close`` comes while one waits).
        Raises ``ValidationError`` for an unknown endpoint and ``TransportError`` once
        closed, having taken none.
        """
        if endpoint not in ENDPOINTS:
            raise ValidationError([Problem("endpoint", f"{endpoint!r} is not one of {ENDPOINTS}")])
        self._ready_to_take()
        self._queue.put_many(
            [(endpoint, None, data) for data in records],
            [len(data) + RECORD_OVERHEAD for data in records],
        )

    def _ready_to_take(self) -> None:
        """Refuse once closed; start the thread on the first record."""
        if self._closed:
            raise TransportError(self._closed_text())
        if self._thread is None:
            self._start()

    def _closed_text(self) -> str:
        return f"transport {self.name!r} is closed; it cannot take messages"

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                if self._cancel_exit_close is None and self.options.exit_timeout > 0:
                    me = weakref.ref(self)
                    self._cancel_exit_close = at_exit(lambda: _close_at_exit(me))
                thread = threading.Thread(
                    target=_send_while_owned,
                    args=(weakref.ref(self), self._queue, self.client, self._cancel_exit_close),
                    name=f"mixpanel-core-{self.name}",
                    daemon=True,
                )
                self._queue.consumer = thread
                thread.start()
                self._thread = thread

    def flush(self, timeout: float | None = None) -> list[Message]:
        """Wait until everything submitted so far is settled, at most ``timeout`` seconds.

        Returns the messages still queued or in flight when time ran out (they stay queued).
        """
        self._refuse_waiting_for_itself("flush")
        deadline = time.monotonic() + bounded(timeout, self.options.flush_timeout)
        target = self._queue.total_put
        with self._state:
            self._urgent += 1
        self._queue.wake()
        try:
            with self._state:
                while not self._settled_up_to(target):
                    left = deadline - time.monotonic()
                    if left <= 0 or self._thread is None:
                        break
                    self._state.wait(left)
                else:
                    return []
                pending = list(self._in_flight)
        finally:
            with self._state:
                self._urgent -= 1
        return _messages(pending + self._queue.snapshot())

    def _settled_up_to(self, target: int) -> bool:
        """Whether every record put before the ``target``-th is settled or dropped (``_state``
        held): none is queued, and none is in the take being delivered.

        Positions, not counts: under ``drop_oldest`` the records put after ``flush`` started
        are evicted too, and counting them made ``flush`` return while earlier records were
        still in flight.
        """
        if self._queue.removed < target:
            return False
        return self._take_from is None or self._take_from >= target

    def close(self, timeout: float | None = None) -> list[Message]:
        """Flush within ``timeout``, stop the thread, and give up on what is left.

        What is left is reported FAILED, written to the dead-letter file, and returned: the
        records still queued or in flight (not yet answered) when the thread is given up on,
        and those the thread settles FAILED once ``close`` stopped waiting (a retry it no
        longer waits for, a request it no longer starts). A record settled ACCEPTED or
        REJECTED meanwhile is not returned, also one of a request still out when the thread
        is given up on (the first half of a split batch that Mixpanel accepted: the thread
        reports it when that request ends). Idempotent: a second call returns nothing (also
        one made while the first runs).

        It takes up to ``timeout``, then 50 ms for the thread to end (up to ``_SETTLING_GRACE``
        more for a thread it stopped in a retry wait to settle that call, never for its
        reports), then the reports and dead letters of what it gives up on.
        """
        self._refuse_waiting_for_itself("close")
        bound = bounded(timeout, self.options.flush_timeout)  # refused before anything changes
        with self._state:
            if self._closed:
                return []
            self._closed = True
        # Closed under the queue's lock too: a producer that got past the check in ``submit``,
        # or waits for room, is refused rather than queueing behind the final drain.
        self._queue.close(self._closed_text())
        started = time.monotonic()
        try:
            left = self.flush(bound)
        except BaseException:
            # Interrupted while it waits (SystemExit from a SIGTERM handler, Ctrl-C): left for
            # the exit close to finish. Left closed, the exit close returned at once, and
            # what was queued vanished with no report, dead letter or log line.
            with self._state:
                self._closed = False
            raise
        self._queue.finish()
        if left:
            self._abort.set()
        self._queue.wake()
        stuck: list[Record] = []
        thread = self._thread
        if thread is not None:
            thread.join(max(0.0, started + bound - time.monotonic()) + 0.05)
            if thread.is_alive() and self._in_retry_wait:
                # Stopped in a retry wait, it has no request out: it is settling that call,
                # which on a loaded machine can take more than 50 ms. Given up on meanwhile,
                # the batch it no longer retries would be reported "during the request", not
                # with Mixpanel's last answer. Until that step only, not the thread's end:
                # its reports (a slow report callback) are not close's to wait for.
                self._stopped_call_settled.wait(_SETTLING_GRACE)
            if thread.is_alive():
                with self._state:
                    self._abandoned = True
                    stuck = list(self._in_flight)
                self._give_up(stuck, "not delivered: close() timed out during the request")
        queued = self._queue.take(len(self._queue))
        self._give_up(queued, "not delivered: close() timed out")
        if self._cancel_exit_close is not None:
            self._cancel_exit_close()
        self.client.close()
        # Not ``left``: the thread may have settled some of those since (Mixpanel accepted
        # them: a caller resending them would apply a profile $add twice). Read after
        # ``_abandoned`` is set, after which the thread adds none.
        with self._state:
            failed_by_thread = list(self._failed_after_abort)
        return failed_by_thread + _messages(stuck + queued)

    def _refuse_waiting_for_itself(self, verb: str) -> None:
        """Raise if the calling thread is one that ``flush``/``close`` would wait for.

        The sender thread itself (from a ``mixpanel_delivered`` hook) would wait for the thread
        that is waiting for it: out the whole timeout, then a ``close`` gave up with the queue
        still full and the thread stopped, losing what was queued without a report. A thread
        inside the transport (a signal handler that interrupted its ``send()``, or its own
        ``flush``) holds a lock that ``flush``/``close`` take: it would wait forever. Refused
        before anything changes, nothing is lost.
        """
        if threading.current_thread() is self._thread:
            raise TransportError(
                f"{self.name}: {verb}() was called from the sender's own thread (a delivery "
                "report hook?), which would wait for itself; call it from another thread"
            )
        if self._queue.held_here() or _held_by_caller(self._state_lock):
            raise TransportError(
                f"{self.name}: {verb}() was called while this thread is inside the transport "
                "(from a signal handler that interrupted send() or flush()?), which would wait "
                "for itself forever; from a signal handler, raise SystemExit (call sys.exit()) "
                "instead: the exit close then runs once the interrupted call has let go"
            )

    # -- the sender thread ----------------------------------------------------------------

    def _ready(self) -> bool:
        """Whether to send what is queued now, without lingering for a full batch."""
        return self._urgent > 0 or self._queue.finished

    def _send_next(self) -> bool:
        """Linger for a fuller batch, take it and deliver it; ``False`` once the thread is to end
        (``close`` ran out of time, or it finished and nothing is left)."""
        queue = self._queue
        if self._abort.is_set() or (queue.finished and not len(queue)):
            return False
        linger = self.options.linger
        if linger and not self._ready():
            queue.wait_until(self._ready, linger)
        with self._state:
            # Taken and published as in flight in one step: ``close`` gives up on what is
            # queued and what is in flight, and must never see a take between the two. An
            # eviction between reading ``removed`` and the take only makes ``_take_from``
            # smaller: ``flush`` then waits for this take too, never too little.
            self._take_from = queue.removed
            items = queue.take(self._batch_records)
            self._in_flight = items
        try:
            self._deliver(items)
        except Exception as error:
            # The thread must outlive any bug: everything queued after this take would
            # otherwise never be sent. Requests are settled one by one in ``_send``, so an
            # error here came before any request (cutting the batches): none was sent.
            logger.exception("%s: unexpected error while preparing requests", self.name)
            self._give_up(items, f"not sent: {type(error).__name__}: {error}")
        finally:
            with self._state:
                self._in_flight = []
                self._take_from = None
                self._state.notify_all()
        return not self._abort.is_set()

    def _deliver(self, records: list[Record]) -> None:
        # Each batch is one request (and one retry budget, as the option says); the client
        # finds it within the limits with a single sum and sends it as it is. All are cut
        # before the first is sent, so a failure while cutting them leaves none half-sent.
        max_bytes = self.client.options.max_batch_bytes
        requests = [
            (endpoint, batch)
            for endpoint, pairs in _by_endpoint(records)
            for batch in split_encoded(
                pairs,
                self.client.wire_format(endpoint),
                max_bytes,
                records_limit(endpoint, self._batch_records),
            )
        ]
        for index, (endpoint, batch) in enumerate(requests):
            if not self._send(endpoint, batch, requests[index + 1 :]):
                return  # close() gave up: the take's later requests were settled unsent

    def _send(
        self,
        endpoint: Endpoint,
        batch: list[EncodedPair],
        rest: list[tuple[Endpoint, list[EncodedPair]]],
    ) -> bool:
        """Send one request of a take and settle it; ``rest`` are the take's later requests.

        ``False`` once ``close`` gave up: the later requests are then settled unsent here.
        """
        outcomes, reports = self._request(endpoint, batch)
        unsent: list[Outcome] = []
        # Decided in the locked step, not after the reports: a ``close`` giving up after that
        # step finds the later requests in flight, and the next ``_send`` settles them.
        going_on = False
        with self._state:
            announced, self._settled_in_call = self._settled_in_call, []
            if self._abandoned:
                # close() gave up on what was still in flight then, and reported it. What was
                # settled before (a first half of a split Mixpanel accepted) is not in its list:
                # reported here, as it was settled, and nothing else.
                outcomes, reports = announced, None
            elif self._abort.is_set():
                # close() ran out of time: it gives up on what is left (reports it FAILED,
                # dead-letters it, returns it), so starting a later request now would deliver
                # records that a replay of the dead letters sends again. Settled in this step,
                # which ends close's wait for it (see close): nothing of the take is left.
                unsent = [self._failed(e, pairs, _NOT_SENT_AFTER_CLOSE) for e, pairs in rest]
                self._failed_after_abort.extend(_failed_messages(unsent))
                self._in_flight = []
                self._stopped_call_settled.set()
            else:
                # The client announced this request's records settled as it settled them, so
                # they are out of what is in flight already (see ``_settled_now``); this only
                # makes sure of it. Rebuilt only for a take of several requests.
                self._in_flight = [(e, m, d) for e, pairs in rest for m, d in pairs] if rest else []
                going_on = True
        if reports is None:
            self._settle(outcomes)
        else:
            self._settle_reports(reports)
        if unsent:
            self._settle(unsent)
        return going_on

    def _request(
        self, endpoint: Endpoint, batch: list[EncodedPair]
    ) -> tuple[Sequence[Outcome], Sequence[DeliveryReport] | None]:
        """The outcomes of one request, or the reports of a refusal of its credentials.

        Every record of it is announced settled (``_settled_now``) once, as it is settled: by
        the client for what it sends, here for what never reaches the client.
        """
        if self._abort.is_set():
            # close() ran out of time: it gives up on what is left (reports it FAILED,
            # dead-letters it, returns it), so starting this request now would deliver
            # records that a replay of the dead letters sends again.
            unsent = [self._failed(endpoint, batch, _NOT_SENT_AFTER_CLOSE)]
            self._settled_now(unsent)
            return unsent, None
        try:
            result = self.client.send_encoded(
                endpoint, batch, self._wait, on_settled=self._settled_now
            )
        except AuthenticationError as error:
            logger.error("%s: %s", self.name, error)
            return (), error.reports
        except Exception as error:
            # The sender must outlive any bug or surprise: the records the call had not
            # settled are reported FAILED, not lost; those it had keep their outcomes.
            logger.exception("%s: unexpected error while sending to /%s", self.name, endpoint)
            with self._state:
                settled = list(self._settled_in_call)
            rest = _unsettled(batch, settled, _pair_data)
            if not rest:
                return settled, None
            failed = [self._failed(endpoint, rest, f"{type(error).__name__}: {error}")]
            self._settled_now(failed)
            return settled + failed, None
        return result.outcomes, None

    def _settled_now(self, outcomes: Sequence[Outcome]) -> None:
        """The client's ``on_settled``: records it settled while the request goes on.

        They leave what is in flight at once, so ``close``, giving up on the thread while a
        later part of the same call is still out (the second half of a split batch), gives up
        on that part only, never on a half Mixpanel already accepted; and they are kept, for
        the thread to report if ``close`` abandons it meanwhile (see ``_send``). Once it did,
        ``close`` gave up on everything still in flight: nothing changes any more.
        """
        if not outcomes:
            return
        with self._state:
            if self._abandoned:
                return
            self._settled_in_call.extend(outcomes)
            self._in_flight = _unsettled(self._in_flight, outcomes, _data_of)
            if self._abort.is_set():
                # In the same locked step as the check above: ``close`` returns these with
                # what it gives up on, and reads them only after it set ``_abandoned``.
                self._failed_after_abort.extend(_failed_messages(outcomes))

    def _wait(self, seconds: float) -> bool:
        """The client's wait before a retry; ``False``, which stops the client's call, once
        ``close`` ran out of time. Returning rather than raising lets the call keep what it
        settled before (a first half of a split Mixpanel accepted stays ACCEPTED)."""
        self._in_retry_wait = True
        if self._abort.wait(seconds):
            return False  # still no request out: close may wait for this call to settle
        self._in_retry_wait = False
        return True

    # -- outcomes -------------------------------------------------------------------------

    def _failed(self, endpoint: Endpoint, items: Sequence[EncodedPair], reason: str) -> Outcome:
        return Outcome(endpoint, items, DeliveryStatus.FAILED, self.name, reason)

    def _settle(self, outcomes: Sequence[Outcome]) -> None:
        """Report, dead-letter and log every record not delivered; report accepted ones
        only when observed.

        Unobserved, accepted records get no report at all: that is most of the sender's
        work per record saved, and nothing observable is lost (the counts ``flush`` and
        ``close`` need are kept by the queue and the thread).
        """
        observed = self._observed
        lost: list[DeliveryReport] = []
        told: list[DeliveryReport] = []
        for outcome in outcomes:
            if outcome.ok and not observed:
                continue
            reports = outcome.reports()
            told.extend(reports)
            if not outcome.ok:
                lost.extend(reports)
        self._tell(lost, told)

    def _settle_reports(self, reports: Sequence[DeliveryReport]) -> None:
        self._tell([r for r in reports if not r.ok], reports)

    def _tell(self, lost: list[DeliveryReport], reports: Sequence[DeliveryReport]) -> None:
        if lost:
            if self._dead_letter is not None:
                self._dead_letter.write(lost)
            logger.warning(
                "%s: %d record(s) not delivered; first: %s", self.name, len(lost), lost[0].reason
            )
        self._report_each(reports)

    def _report_each(self, reports: Iterable[DeliveryReport]) -> None:
        """Hand each report to ``report``; one that raises is logged and the rest go on.

        A transport's ``report`` may be any callable (not only the pipeline's, which guards
        its plugins): its bug must neither end the sender thread nor silence later reports.
        """
        failures = 0
        for report in reports:
            try:
                self._report(report)
            except Exception:
                failures += 1
                if failures == 1:
                    logger.exception("%s: the report callback failed", self.name)
        if failures > 1:
            logger.error("%s: the report callback failed %d times more", self.name, failures - 1)

    def _give_up(self, records: list[Record], reason: str) -> None:
        self._settle([self._failed(e, pairs, reason) for e, pairs in _by_endpoint(records)])

    def _dropped(self, records: list[Record], reason: str) -> None:
        # Logged by the queue, which counts the drop (see ``BoundedQueue._hand_dropped``).
        if self._report is not ignore_report:
            messages = _rebuilt(records)
            self._report_each(reports_for(messages, DeliveryStatus.DROPPED, self.name, reason))
        if self.options.when_full == "drop_oldest":
            with self._state:
                self._state.notify_all()


def _by_endpoint(records: list[Record]) -> list[tuple[Endpoint, list[EncodedPair]]]:
    """``records`` grouped by endpoint, each group in queue order, as the client's pairs."""
    endpoints = set(map(_endpoint_of, records))
    if len(endpoints) == 1:
        # The usual take: one endpoint. The pairs are made by C iterators, no step per record.
        pairs = list(zip(map(_message_of, records), map(_data_of, records), strict=True))
        return [(endpoints.pop(), pairs)]
    groups: dict[Endpoint, list[EncodedPair]] = {}
    for endpoint, message, data in records:
        group = groups.get(endpoint)
        if group is None:
            group = groups[endpoint] = []
        group.append((message, data))
    return list(groups.items())


_endpoint_of = operator.itemgetter(0)
_message_of = operator.itemgetter(1)
_data_of = operator.itemgetter(2)
_pair_data = operator.itemgetter(1)


def _unsettled(items: list[T], settled: Sequence[Outcome], data: Callable[[T], bytes]) -> list[T]:
    """``items`` (records or pairs) but those of ``settled``, which must all be among them.

    Matched by the identity of their JSON, each once: the same message sent twice shares it.
    """
    count = sum(len(outcome.items) for outcome in settled)
    if count == len(items):
        return []  # the usual take: one request, settled whole in one announcement
    if not count:
        return items
    gone = collections.Counter(id(pair[1]) for outcome in settled for pair in outcome.items)
    kept: list[T] = []
    for item in items:
        key = id(data(item))
        if gone[key]:
            gone[key] -= 1
        else:
            kept.append(item)
    return kept


def _rebuilt(records: list[Record]) -> list[Message | None]:
    """The message of each record, rebuilt from its JSON where it was not kept."""
    return [message_in(endpoint, (message, data)) for endpoint, message, data in records]


def _messages(records: list[Record]) -> list[Message]:
    """The messages of ``records`` (see ``_rebuilt``), leaving out JSON that is no record."""
    return [message for message in _rebuilt(records) if message is not None]


def _failed_messages(outcomes: Sequence[Outcome]) -> list[Message]:
    """The messages of the FAILED ones of ``outcomes`` (rebuilt where not kept)."""
    failed = DeliveryStatus.FAILED
    reports = [r for o in outcomes if o.status is failed for r in o.reports()]
    return [r.message for r in reports if r.message is not None]


def _send_while_owned(
    ref: weakref.ref[BackgroundSender],
    queue: BoundedQueue[Record],
    client: IngestionClient,
    cancel_exit_close: Callable[[], None] | None,
) -> None:
    """The sender thread: deliver what is queued until ``close``, or until the sender is freed.

    It holds its sender only while it has something to deliver. Waiting, it holds the queue,
    the client and a weak reference: a running thread is never collected, so one that held
    its sender would keep every sender dropped without ``close`` (and its connections)
    forever. A sender dropped with records queued lives on, kept by its queue, until they are
    delivered, retried, reported and dead-lettered as usual; freed, its finalizer only
    ``finish``es the queue (it may run on any thread, inside any lock), and this thread then
    closes the connections and cancels the exit hook.
    """
    while True:
        # Only records or the end wake it: a flush with nothing queued has nothing to wait
        # for (it returns at once), and waking for it spun this loop on an empty queue,
        # holding the interpreter, until the flush noticed.
        queue.wait_not_empty(IDLE_RECHECK)
        sender = ref()
        if sender is None:
            break
        if (len(queue) or queue.finished) and not sender._send_next():
            return  # closed: ``close`` releases the rest
        del sender  # idle again: waiting must not keep the sender alive
    if cancel_exit_close is not None:
        cancel_exit_close()
    client.close()


EXIT_CLOSE_FLOOR = 1.0
"""Seconds each exit close has at least (up to its ``exit_timeout``), whatever is left of the
exit's shared bound (see ``_close_at_exit``)."""


def _close_at_exit(ref: weakref.ref[BackgroundSender]) -> None:
    sender = ref()
    if sender is not None:
        # Counted from the start of exit, not from this close: the senders close one after
        # another, and the exit must end within the largest exit_timeout, not their sum. But
        # never less than a short floor: a sender whose close comes after a stalled one's may
        # have records queued during exit (by an atexit handler of the application's) that
        # take it milliseconds to deliver, not worth losing for no time saved.
        bound = sender.options.exit_timeout
        sender.close(max(exit_time_left(bound), min(bound, EXIT_CLOSE_FLOOR)))
