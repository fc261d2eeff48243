"""Delivery reports on their way back: collected in the sender, replayed in the owner.

The sender's inner transport reports from its own threads; ``ReportRelay`` gathers the
reports and ships them in batches on the report queue, each as plain values plus the
message's wire line. ``decode_report`` turns one back into a ``DeliveryReport`` in the owner.

The same queue carries the sender's answers: ``(FLUSHED, token, undelivered, error, taken)``
to a flush request, where ``undelivered`` counts the records its inner transport's ``flush``
left queued (a count, not the records: a backlog of hundreds of thousands would not cross the
queue in time), ``error`` (None when it did not fail) says what that ``flush`` raised and
``taken`` how many records the sender had taken when it began (each of which has its outcome
once a flush leaves none and raises nothing), and, last,
``(DONE, counts, frame, failed)``: ``frame`` (see ``frames``; empty for none) holds the records
the sender read after the owner's close left no time and never handed to its inner transport,
which the owner's ``close`` returns; ``failed`` is true when the sender or its inner transport
failed (see ``ReportRelay.fail``), so that records it took may have no report.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading
from collections.abc import Callable, Sequence
from multiprocessing.queues import Queue
from typing import Any, NamedTuple, TypeVar

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, note_report
from mixpanel_core.messages import Message
from mixpanel_core.multiprocess.frames import decode_line

logger = logging.getLogger(__name__)

EncodedReport = tuple[
    str, str, str | None, int | None, int, str | None, float | None, bool, str | None, bytes | None
]
"""status, then ``DeliveryReport``'s fields from transport to maybe_applied, in its order;
then the endpoint and the record JSON."""

REPORTS = "reports"
FLUSHED = "flushed"
DONE = "done"
FATAL = "fatal"
CUT = "cut"

T = TypeVar("T")


def unreported(
    items: Sequence[T], identity: Callable[[T], object], seen: Sequence[Message]
) -> list[T]:
    """Those of ``items`` no message of ``seen`` answers for: matched by ``identity`` (its
    insert id, else its record: see ``message_identity``), one report answering for one item,
    so that two items alike are not both taken as reported by one report. ``identity``
    returns ``None`` for an item that cannot be matched (always unreported)."""
    if not seen:
        return list(items)
    reported: collections.Counter[object] = collections.Counter(map(message_identity, seen))
    left: list[T] = []
    for item in items:
        key = identity(item)
        if key is not None and reported[key] > 0:
            reported[key] -= 1
        else:
            left.append(item)
    return left


def message_identity(message: Message) -> tuple[str, object]:
    """What tells a message from the others of a call: its insert id, else its record."""
    insert_id = message.insert_id
    return (message.endpoint, insert_id if insert_id is not None else message.record)


def encode_report(report: DeliveryReport) -> EncodedReport:
    message = report.message
    return (
        report.status.value,
        report.transport,
        report.reason,
        report.http_status,
        report.attempts,
        report.field,
        report.retry_after,
        report.maybe_applied,
        message.endpoint if message is not None else None,
        message.json() if message is not None else None,  # the frame's own bytes, kept
    )


def decode_report(encoded: EncodedReport) -> DeliveryReport:
    endpoint, record = encoded[8], encoded[9]
    message = decode_line(endpoint, record) if endpoint is not None and record else None
    return DeliveryReport(message, DeliveryStatus(encoded[0]), *encoded[1:8])


class FlushAnswer(NamedTuple):
    """The sender's answer to a flush request."""

    undelivered: int
    """Records its inner transport's ``flush`` left queued (still held, delivered later)."""
    error: str | None = None
    """What that ``flush`` raised, if it did: then ``undelivered`` is unknown (0)."""


class ReportRelay:
    """Collects the sender's reports (from any thread) and ships them to the owner.

    It also keeps the totals per status. Every record the sender takes is either accepted or
    reported otherwise (a transport may leave out accepted ones when nobody observes them),
    so the relay counts what was taken and the reports that are not ACCEPTED; the rest were
    accepted. Counting that way costs nothing per accepted record. Once the sender or its
    inner transport failed (``fail``), the rest may also be records with no outcome at all, so
    only the ACCEPTED reports made are counted accepted.
    """

    def __init__(
        self, reports: Queue[Any], forward: bool, shared_taken: ctypes.c_longlong | None = None
    ) -> None:
        self._queue = reports
        self._shared_taken = shared_taken
        self._forward = forward
        self._lock = threading.Lock()
        self._pending: list[EncodedReport] = []
        self._taken = 0
        self._not_accepted: collections.Counter[str] = collections.Counter()
        self._accepted = 0
        """ACCEPTED reports made: the accepted count once ``_failed``."""
        self._failed = False
        self._given_up: list[bytes] = []
        self._overcount_logged = False

    def taken(self, count: int) -> None:
        """The sender took ``count`` more records off the queue."""
        with self._lock:
            self._taken += count
            if self._shared_taken is not None:
                # Where the owner can read it even after this process was killed.
                self._shared_taken.value = self._taken

    def report(self, report: DeliveryReport) -> None:
        """The inner transport's reporter."""
        note_report(report)
        encoded = encode_report(report) if self._forward else None
        with self._lock:
            if report.ok:
                self._accepted += 1
            else:
                self._not_accepted[report.status.value] += 1
            if encoded is not None:
                self._pending.append(encoded)

    def counts(self) -> dict[str, int]:
        """Records per delivery status so far (statuses with none left out)."""
        with self._lock:
            reported = self._accepted + sum(self._not_accepted.values())
            taken = self._taken
            if self._failed:
                accepted = self._accepted
            else:
                # Never below 0: more reports than records is said below, not put in the counts.
                accepted = max(taken - sum(self._not_accepted.values()), 0)
            counts = {DeliveryStatus.ACCEPTED.value: accepted, **self._not_accepted}
            overcounted = reported > taken and not self._overcount_logged
            self._overcount_logged |= overcounted
        if overcounted:
            # Each record has one outcome: more reports than records means some record was
            # reported twice (by the inner transport, or by the sender and it), and the counts
            # are wrong somewhere. Said, once, rather than hidden.
            logger.error(
                "%d delivery reports for %d records taken: some record was reported more than "
                "once; the counts per status are not reliable",
                reported,
                taken,
            )
        return {status: count for status, count in counts.items() if count}

    def ship(self) -> None:
        """Send what was collected since the last call, as one queue item."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            self._queue.put((REPORTS, pending))

    def taken_so_far(self) -> int:
        """How many records the sender has taken off the queue."""
        with self._lock:
            return self._taken

    def answer_flush(
        self, token: int, undelivered: int, error: str | None = None, *, taken: int
    ) -> None:
        """Answer flush request ``token`` with how many records are not yet delivered, or what
        the inner transport's flush raised, and how many the sender had ``taken`` when that
        flush began (reports first: the owner's hook has seen what was settled when ``flush``
        returns)."""
        self.ship()
        self._queue.put((FLUSHED, token, undelivered, error, taken))

    def cut(self, pid: int, records: int) -> None:
        """A producer (``pid``) stopped in the middle of a frame of ``records`` records."""
        self._queue.put((CUT, pid, records))

    def fatal(self, reason: str) -> None:
        self._queue.put((FATAL, reason))

    def fail(self, reason: str) -> None:
        """The sender's drain or its inner transport's ``close`` failed (``reason``): records it
        took may never get a report, so the counts stop deriving acceptance from silence, and
        the owner is told why (and counts what has no report)."""
        with self._lock:
            self._failed = True
        self.fatal(reason)

    def gave_up(self, frame: bytes) -> None:
        """A frame the sender reported FAILED without handing it to its inner transport: ``done``
        gives it back to the owner."""
        self._given_up.append(frame)

    def done(self) -> None:
        """The last item: the counts per status over the sender's whole life, the frames
        given up on (see ``gave_up``), and whether it failed (see ``fail``)."""
        self.ship()
        with self._lock:
            failed = self._failed
        self._queue.put((DONE, self.counts(), b"\n".join(self._given_up), failed))
