"""``BoundedQueue``: a FIFO bounded by item count and by bytes, with a policy for when full.

When full it blocks (up to a timeout), drops the newest or drops the oldest, and hands every
dropped item to a callback. Any transport that queues (``buffered_http``,
``multiprocessing_queue``) uses it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, Literal, TypeVar

from mixpanel_core.errors import QueueFullError, TransportError

# Drop lines keep the logger they had while the queue lived in ``buffering``: a deployment
# that routes or silences ``mixpanel_core.buffering`` still sees (or hides) them all.
logger = logging.getLogger("mixpanel_core.buffering")

T = TypeVar("T")
WhenFull = Literal["block", "drop_newest", "drop_oldest"]


def _no_owner() -> None:
    return None


def held_by_caller(lock: threading.RLock) -> bool:
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
        self.room_wanted = False
        """Whether a put found no room since the consumer last took: a consumer holding back
        (a ``Retry-After``) gives way (see ``wait_while``)."""
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
        return held_by_caller(self._lock)

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
        waited = False
        with self._lock:
            if self._closed is not None:
                raise TransportError(self._closed)
            self.room_wanted = True
            self._not_empty.notify_all()
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
                        lambda: (
                            self._fits(size) or self._closed is not None or self._want_room_again()
                        ),
                        self.block_timeout,
                    )
                    if self._closed is not None:
                        raise TransportError(self._closed)
                    waited = True
                    if not self._fits(size):
                        refused = (
                            f"dropped: the queue stayed full ({self._held()}) for "
                            f"{self.block_timeout}s",
                            # Said first: during an outage no queue is large enough.
                            "if Mixpanel is failing or slow, the sender is retrying or "
                            "waiting (see the log) and the queue fills however large it "
                            "is; otherwise raise max_queue_messages/"
                            "max_queue_bytes or block_timeout, or choose when_full = "
                            "'drop_newest' or 'drop_oldest'",
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
                raise QueueFullError(f"{reason}; {remedy}", waited=waited)

    def _want_room_again(self) -> bool:
        """Raise ``room_wanted`` again (lock held) for a put still waiting: a take that left
        too little room cleared it, and a consumer holding back would hold on. ``False``, as
        the rest of a wait's condition."""
        if not self.room_wanted:
            self.room_wanted = True
            self._not_empty.notify_all()
        return False

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
            self.room_wanted = False
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

    def wait_while(self, holding: Callable[[], bool], timeout: float) -> None:
        """Wait, at most ``timeout``, while ``holding()`` (checked under the lock), until a put
        finds the queue full (``room_wanted``)."""
        with self._lock:
            self._not_empty.wait_for(lambda: self.room_wanted or not holding(), timeout)

    def wait_not_empty(self, timeout: float) -> None:
        """Wait until an item is queued or the queue is ``finish``ed, at most ``timeout``."""
        with self._lock:
            self._not_empty.wait_for(lambda: bool(self._items) or self._finished, timeout)

    def wake(self) -> None:
        """Wake the consumer so it re-checks its ``ready`` condition (flush, close)."""
        with self._lock:
            self._not_empty.notify_all()
