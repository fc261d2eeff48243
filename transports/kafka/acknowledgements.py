"""The bookkeeping of one kafka transport's acknowledgements: what is in flight, each record
reported exactly once, and ``flush()``'s and ``close()``'s view of what is still held.

Every record gets a send number and waits in ``unacknowledged`` until its acknowledgement or
failure claims it (``claim``), or a ``close()`` giving up takes it (``give_up``): whoever pops
it reports it, so each record is reported once. A record is settled for ``flush()`` only once
its report has been made: it enters ``_reporting`` (or ``_giving_up``) before it leaves
``unacknowledged``, and stays there until its report is made.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from mixpanel_core.messages import Message

from .log import logger
from .reports import Reports, inside_a_report

_get_ident = threading.get_ident


class Acknowledgements:
    """The records one transport sent that are not settled yet, by send number."""

    def __init__(self, reports: Reports) -> None:
        self._reports = reports
        self.next_number = itertools.count().__next__
        """The number of the next record sent: numbers grow with time (see ``ProducerHealth``)."""
        self.reset()

    def reset(self) -> None:
        """Forget every record: new ones only (also in a ``fork()`` child, for the parent's)."""
        # Sent but not yet acknowledged, by send number; callbacks run on the producer's thread.
        self.unacknowledged: dict[int, Message] = {}
        # Settled but still being reported, with the thread reporting it: flush() waits for
        # these too, so a flush that found nothing held has every report made (a caller
        # counting reports, like the send and replay commands, saw a message neither reported
        # nor returned, and resent it); but not for those its own thread is reporting (a
        # reporter calling flush() or close() would wait for itself).
        self._reporting: dict[int, tuple[Message, int]] = {}
        # What close() gave up on and is reporting FAILED, with its thread and the number it
        # is reporting now: flush() waits for those reports too (or returns them; on the
        # closer's thread, all but the one being reported).
        self._giving_up: tuple[int, dict[int, Message]] = (0, {})
        self._giving_up_now = -1
        self.lock = threading.Lock()
        """Also the transport's, so that one ``close()`` only runs."""
        self._all_acknowledged = threading.Condition(self.lock)

    def acknowledged(self, number: int) -> None:
        """Report record ``number`` ACCEPTED (unless a ``close()`` giving up took it)."""
        if not self._reports.observed:
            self._settle(number)  # nobody reads reports: nothing to wait for after the pop
            return
        message = self.claim(number)
        if message is not None:
            try:
                self._reports.accepted(message)
            finally:
                self.reported(number)

    def failed(self, number: int, exc: BaseException) -> None:
        """Report record ``number`` FAILED (unless a ``close()`` giving up took it)."""
        message = self.claim(number)
        if message is not None:
            try:
                self._reports.failure(message, exc)
            finally:
                self.reported(number)

    def claim(self, number: int) -> Message | None:
        """Take record ``number`` out of the unacknowledged to report it; ``None`` when a
        ``close()`` giving up on it took it first (and reports it itself).

        Until ``reported``, the record is in ``_reporting``: it enters that before it leaves
        ``unacknowledged``, so ``flush()`` never sees it in neither while its report is
        pending. The pop decides who reports, so each record is reported exactly once.
        """
        message = self.unacknowledged.get(number)
        if message is None:
            return None
        self._reporting[number] = (message, _get_ident())
        if self.unacknowledged.pop(number, None) is None:
            self.reported(number)
            return None
        return message

    def reported(self, number: int) -> None:
        self._reporting.pop(number, None)
        # Also while other reports are being made: a waiter may be one of their reporters,
        # which waits for all but its own.
        if not self.unacknowledged:
            with self.lock:
                self._all_acknowledged.notify_all()

    def _settle(self, number: int) -> Message | None:
        """Take record ``number`` out of the unacknowledged, for a caller that reports it
        without ``flush()`` waiting for that report (nobody observes reports)."""
        message = self.unacknowledged.pop(number, None)
        if not self.unacknowledged and not self._reporting:
            with self.lock:
                self._all_acknowledged.notify_all()
        return message

    def give_up(self, when: str) -> list[Message]:
        """Report FAILED, once each, every record still unacknowledged; return their messages."""
        # All taken before any is reported, so no report of a late acknowledgement begins once
        # close() gave up (taken one by one between slow FAILED reports, some were acknowledged
        # meanwhile and their reports still being made when close() returned). A late
        # acknowledgement or error that pops one first reports it itself.
        # Each is in _giving_up before it leaves unacknowledged, and until its FAILED report
        # is made: a flush() on another thread waits for those reports or returns them.
        giving_up = self.unacknowledged.copy()
        self._giving_up = (_get_ident(), giving_up)
        left: list[tuple[int, Message]] = []
        for number in list(giving_up):
            if self.unacknowledged.pop(number, None) is None:
                del giving_up[number]  # in _reporting: its acknowledgement's report is made
            else:
                left.append((number, giving_up[number]))
        with self.lock:  # a reporter's flush() waits for acknowledgements only: none is left
            self._all_acknowledged.notify_all()
        reason = f"not acknowledged by Kafka {when}"
        try:
            for number, message in left:
                self._giving_up_now = number
                try:
                    self._reports.given_up(message, reason)
                except Exception:
                    # A reporter passed in as report= (the pipeline's catches its plugins'
                    # errors): the others still get theirs, and the producer is still closed.
                    logger.exception(
                        "transport %r: the delivery reporter failed on a message close() "
                        "gave up on",
                        self._reports.name,
                    )
                finally:
                    del giving_up[number]
                    with self.lock:
                        self._all_acknowledged.notify_all()
        finally:
            # Interrupted (KeyboardInterrupt in a report): no flush() waits for the rest.
            self._giving_up_now = -1
            giving_up.clear()
            with self.lock:
                self._all_acknowledged.notify_all()
        if left:
            logger.warning(
                "transport %r: %d message(s) not acknowledged by Kafka %s, reported FAILED",
                self._reports.name,
                len(left),
                when,
            )
        return [message for _, message in left]

    def wait(self, deadline: float) -> None:
        """Wait until every record is settled (its report made), or until ``deadline``."""

        # Not KafkaProducer.flush(timeout): it applies the timeout to each batch in turn, so
        # its total is unbounded. Records still leave after at most linger_ms on their own.
        def acknowledged() -> bool:
            return not self.unacknowledged

        def reported() -> bool:
            return not (self.unacknowledged or self._reporting or self._giving_up[1])

        # Inside a report (never a network thread's: those do not wait), reports other
        # threads make are not waited for (they may be waiting for this one's), only
        # acknowledgements, which the network threads, never waiting, keep making.
        self._wait_for(acknowledged if inside_a_report() else reported, deadline)

    def _wait_for(self, done: Callable[[], bool], deadline: float) -> None:
        with self._all_acknowledged:
            self._all_acknowledged.wait_for(done, max(deadline - time.monotonic(), 0.0))

    def still_held(self) -> list[Message]:
        """The messages not settled yet, in the order sent, but for those this thread is
        reporting (from its report)."""
        # Copied in this order: a record being claimed (or given up on by close()) enters
        # _reporting (_giving_up) before it leaves unacknowledged, so it is in one copy or
        # another until its report is made.
        held = self.unacknowledged.copy()
        reporting = self._reporting.copy()
        closer, giving_up = self._giving_up
        if not reporting and not giving_up:
            return list(held.values())  # nothing being reported: no sort, no second look
        me = _get_ident()  # not the messages this thread is reporting (from its report)
        held.update((n, message) for n, (message, owner) in reporting.items() if owner != me)
        if closer != me:
            held.update(giving_up.copy())
        else:  # from a FAILED report close() is making: all but the one being reported
            now = self._giving_up_now
            held.update((n, message) for n, message in giving_up.items() if n != now)
        return [held[number] for number in sorted(held)]
