"""``DeadLettering``: the forwarder's dead letters from their send until their records are done.

A dead-lettered record is done, and may be committed, only once the dead-letter topic
acknowledged its dead letter; until then the dead letter is *unsettled*.

Waits for the dead-letter topic (for its metadata before a send, for the acknowledgement after
it) last at most ``DEAD_LETTER_TIMEOUT`` (or the producer's ``max_block_ms``) and, once a stop
was requested, end at the shutdown deadline; a dead letter not acknowledged by then leaves its
record uncommitted, to be read again later.

Under ``on_poison = "stop"`` there is no dead-letter topic: a record to be dead-lettered is
noted as a ``PoisonStop`` instead, and stays undone. The stop is requested as soon as it is
noted (``stop``), so the shutdown deadline counts from then, even in the middle of a delivery
round: the forwarder stops as a SIGTERM stops it (what was read before the record is delivered
and committed first, within the deadline) and only then raises, so that skipping the record
by committing the offset after it loses nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.forwarder.config import ForwarderError
from mixpanel_core.forwarder.dead_letters import DeadLetterTimeoutError, DeadLetterWriter, TimeLeft
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.forwarder.offsets import PartitionProgress

logger = logging.getLogger("mixpanel_core.forwarder")

DEAD_LETTER_TIMEOUT = 60.0
"""Longest wait for the dead-letter topic to acknowledge what one turn wrote (and to close),
unless the shutdown deadline comes first."""


@attrs.frozen
class PoisonStop:
    """A record that stops the forwarder under ``on_poison = "stop"``: the first on its
    partition (records after it stay unread, or undelivered).

    ``together`` are the later offsets of its partition that Mixpanel rejected with it, in one
    answer for a whole request (a ``status: 0`` from ``/engage`` or ``/groups`` says neither
    which records it refused nor which it applied): a skip must go past them all, since sending
    any of them again may apply it twice.
    """

    progress: PartitionProgress
    offset: int
    stage: str
    reason: str
    together: tuple[int, ...] = ()
    maybe_applied: bool = False
    """A profile or group update that failed after an attempt Mixpanel may have applied
    unanswered: nothing is wrong with it, and only a look at the profile tells whether a skip
    loses it or a restart applies it twice."""
    in_refused_request: bool = False
    """Rejected with the other records of a request Mixpanel refused in part (a ``status: 0``
    naming none), which may include records of other partitions: valid, it was applied, and a
    restart that does not skip it applies it again."""

    @property
    def offsets(self) -> tuple[int, ...]:
        """The record's offset and those rejected with it, in order."""
        return (self.offset, *self.together)

    @property
    def last(self) -> int:
        """The last offset the stop covers: a skip commits the offset after it (at least)."""
        return max(self.offsets)

    @property
    def where(self) -> str:
        """``topic[partition]@offset``, as every message about a record names it."""
        partition = self.progress.partition
        return f"{partition.topic}[{partition.partition}]@{self.offset}"


class DeadLettering:
    """Sends the forwarder's dead letters through ``writer`` and settles them.

    It owns what happens to a record once it is to be dead-lettered: sending its dead letter,
    waiting for the acknowledgement within the time allowed, marking the record done, counting
    it (``metrics.dead_lettered``) and handing its outcome to ``keep_outcome``, for the report
    after the commit.

    ``writer`` is ``None`` under ``on_poison = "stop"``: a record to be dead-lettered is then
    noted in ``stops`` (the first of each partition) for the forwarder to stop on, and ``stop``
    is called (``Forwarder.request_stop``).
    ``shutdown_deadline`` returns the shutdown deadline (``clock`` time) once a stop
    was requested, ``None`` before; it is read again during every wait, so a stop requested
    meanwhile shortens the wait. Used from the forwarder's main thread only.
    """

    def __init__(
        self,
        writer: DeadLetterWriter | None,
        metrics: ForwarderMetrics,
        *,
        clock: Callable[[], float],
        shutdown_deadline: Callable[[], float | None],
        keep_outcome: Callable[[DeliveryReport], None],
        stop: Callable[[], None],
    ) -> None:
        self._writer = writer
        self.to_topic = writer is not None
        """Whether records go to the dead-letter topic (not ``on_poison = "stop"``)."""
        self._stop = stop
        self._metrics = metrics
        self._clock = clock
        self._shutdown_deadline = shutdown_deadline
        self._keep_outcome = keep_outcome
        self._unsettled: list[tuple[PartitionProgress, int, Any, DeliveryReport | None]] = []
        """Dead letters sent and not yet acknowledged: their records, futures and outcomes."""
        self._stops: dict[Any, PoisonStop] = {}
        """Under ``on_poison = "stop"``: the first record of each partition to stop on."""

    @property
    def unsettled(self) -> int:
        """How many dead letters were sent and not yet acknowledged."""
        return len(self._unsettled)

    @property
    def stops(self) -> list[PoisonStop]:
        """The records to stop on (``on_poison = "stop"``), by partition; empty otherwise."""
        return [self._stops[partition] for partition in sorted(self._stops)]

    def stopped_at(self, partition: Any) -> int | None:
        """The offset of the record ``partition`` stops at, if one was found."""
        stop = self._stops.get(partition)
        return None if stop is None else stop.offset

    def send(
        self,
        progress: PartitionProgress,
        raw: Any,
        stage: str,
        reason: str,
        *,
        http_status: int | None = None,
        field: str | None = None,
        attempts: int | None = None,
        outcome: DeliveryReport | None = None,
        together: Sequence[int] = (),
        maybe_applied: bool = False,
        in_refused_request: bool = False,
    ) -> None:
        """Produce the dead letter of ``raw``; ``outcome`` is reported once it is acknowledged.

        Under ``on_poison = "stop"``, note ``raw`` in ``stops`` instead (it stays undone), with
        ``together``, the later offsets of its partition rejected with it (see ``PoisonStop``),
        and request the stop.
        """
        where = f"{raw.topic}[{raw.partition}]@{raw.offset}"
        if self._writer is None:
            # Not raised here: the records read before it (buffered, maybe on other endpoints)
            # must be delivered and committed first, or skipping it would lose them.
            first = self._stops.get(progress.partition)
            if first is None or raw.offset < first.offset:
                self._stops[progress.partition] = PoisonStop(
                    progress,
                    raw.offset,
                    stage,
                    reason,
                    tuple(together),
                    maybe_applied,
                    in_refused_request,
                )
                logger.warning(
                    "stopping at %s (%s): %s. on_poison is 'stop': delivering and committing "
                    "what was read before it first",
                    where,
                    stage,
                    reason,
                )
                # At once, not once the delivery round ends: a round may wait out a long
                # Retry-After, and the stop must end that wait at the shutdown deadline.
                self._stop()
            return
        logger.warning("dead-lettering %s (%s): %s", where, stage, reason)
        try:
            future = self._writer.send(
                raw,
                stage,
                reason,
                http_status=http_status,
                field=field,
                attempts=attempts,
                time_left=self._time_left(math.inf),
            )
        except DeadLetterTimeoutError:
            if not self._past_shutdown_deadline():
                raise
            # Like a delivery cut short by the deadline: left undone, read again later.
            logger.warning(
                "shutdown deadline passed before the dead-letter topic took the dead letter of "
                "%s: it and what follows on its partition stay uncommitted",
                where,
            )
            return
        self._unsettled.append((progress, raw.offset, future, outcome))

    def settle(self) -> None:
        """Mark done the records whose dead letters the broker acknowledged.

        Waits up to ``DEAD_LETTER_TIMEOUT``, or until the shutdown deadline once a stop was
        requested (even one requested while waiting). Past the shutdown deadline, the records
        of dead letters not yet acknowledged stay undone (not committed, read again later);
        otherwise a dead letter not acknowledged in time stops the forwarder.
        """
        writer = self._writer
        if not self._unsettled or writer is None:
            return
        unsettled, self._unsettled = self._unsettled, []
        time_left = self._time_left(DEAD_LETTER_TIMEOUT)
        late = 0
        for progress, offset, future, outcome in unsettled:
            if not writer.acknowledged(future, time_left):
                late += 1
                continue
            progress.done(offset)
            self._metrics.dead_lettered += 1
            if outcome is not None:
                self._keep_outcome(outcome)
        if not late:
            return
        if self._past_shutdown_deadline():
            logger.warning(
                "shutdown deadline passed: %d dead letters not acknowledged by %r; their records "
                "stay uncommitted and will be read again",
                late,
                writer.topic,
            )
            return
        raise DeadLetterTimeoutError(
            f"the dead-letter topic {writer.topic!r} did not acknowledge {late} of "
            f"{len(unsettled)} dead letters within {DEAD_LETTER_TIMEOUT:g}s. Check that its "
            "brokers are reachable; nothing from those records on was committed."
        )

    def settle_before_stopping(self) -> None:
        """``settle`` for a forwarder already stopping on another error: a dead letter that
        fails too is logged, and its record stays uncommitted."""
        try:
            self.settle()
        except ForwarderError as exc:
            logger.warning("while stopping: %s", exc)

    def close(self) -> None:
        """Close the writer, logging what it raises.

        Called from ``Forwarder.run``'s ``finally``: raising here would hide the error that
        ended the run. Every dead letter was settled (or the run is failing anyway) before any
        commit, so a close that fails loses nothing that was committed.
        """
        if self._writer is None:
            return
        try:
            # Bounded by the shutdown deadline too: closing flushes, and an unreachable broker
            # would hold the exit for the whole timeout.
            self._writer.close(max(0.0, self._time_left(DEAD_LETTER_TIMEOUT)()))
        except Exception as exc:
            logger.warning("closing the dead-letter producer: %s: %s", type(exc).__name__, exc)

    def _time_left(self, limit: float) -> TimeLeft:
        """Seconds left of ``limit`` from now, or to the shutdown deadline once a stop was
        requested, whichever ends first; read again on each call, so a SIGTERM that comes
        during a wait shortens it."""
        end = self._clock() + limit

        def time_left() -> float:
            by = self._shutdown_deadline()
            return (end if by is None else min(end, by)) - self._clock()

        return time_left

    def _past_shutdown_deadline(self) -> bool:
        by = self._shutdown_deadline()
        return by is not None and self._clock() >= by
