"""``DeliveryRounds``: the due batches delivered, one endpoint at a time, and each round's
reports applied: accepted records done, rejected ones dead-lettered, failed ones put back and
tried again after a back-off that keeps polling Kafka.

When Mixpanel refuses the credentials (401/403) the forwarder stops, but first it settles what
the refused call had settled: the records of its requests Mixpanel accepted before the refusal
(an earlier request of a split batch, another credential group) are done and committed, the
ones it rejected are dead-lettered, so a restart sends only what was not accepted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.forwarder.config import ForwarderError
from mixpanel_core.forwarder.dead_lettering import DeadLettering
from mixpanel_core.forwarder.dead_letters import DELIVERY_STAGE
from mixpanel_core.forwarder.delivery_wait import DeliveryWait, PausedPolling
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.forwarder.offsets import OffsetTracker
from mixpanel_core.forwarder.outcomes import Outcomes
from mixpanel_core.forwarder.pending import PendingBatches, PendingRecord
from mixpanel_core.forwarder.reassignment import Reassignment
from mixpanel_core.forwarder.round_reports import (
    first_failure,
    longest_retry_after,
    rate_limited,
    with_earlier_attempts,
)
from mixpanel_core.forwarder.shutdown_clock import ShutdownClock
from mixpanel_core.ingestion import Deadline, RetryPolicy, Wait
from mixpanel_core.ingestion.narrowing import refused_in_part
from mixpanel_core.messages import Endpoint, Message

logger = logging.getLogger("mixpanel_core.forwarder")


class Deliver(Protocol):
    """Sends ``messages`` to ``endpoint``; one report per message, in order.

    All its sleeping goes through ``wait``, which returns early once that deadline passes,
    and returns ``False`` when the delivery is to stop retrying: the records waiting to be
    sent again, and those not sent yet, are then reported FAILED (``IngestionClient`` does
    so). ``wait`` also has the methods ``IngestionClient`` calls while a request is out (see
    ``DeliveryWait``), so the forwarder keeps polling Kafka then too.
    ``deadline`` is a function returning the shutdown deadline (monotonic) once a stop was
    requested, ``None`` before: after it no request starts, and a request still waiting for
    its answer is abandoned (its records FAILED).
    Raises ``AuthenticationError`` on 401/403. ``IngestionClient.send_batch`` fits.
    """

    def __call__(
        self, endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> Sequence[DeliveryReport]: ...


class DeliveryRounds:
    """Delivers what ``pending`` has due through ``deliver``, one round per endpoint, on the
    forwarder's main thread.

    ``poll_paused`` is how every wait of a round is spent (``Forwarder._wait``): the client's,
    through ``DeliveryWait``, and the back-off between rounds. ``stop_requested`` is the
    forwarder's stop request, ``shutdown`` its deadline.
    """

    def __init__(
        self,
        deliver: Deliver,
        pending: PendingBatches,
        tracker: OffsetTracker,
        reassignment: Reassignment,
        dead_lettering: DeadLettering,
        outcomes: Outcomes,
        metrics: ForwarderMetrics,
        *,
        poll_paused: PausedPolling,
        shutdown: ShutdownClock,
        stop_requested: threading.Event,
        retry_policy: RetryPolicy,
        clock: Callable[[], float],
    ) -> None:
        self._deliver = deliver
        self._pending = pending
        self._tracker = tracker
        self._reassignment = reassignment
        self._dead_lettering = dead_lettering
        self._outcomes = outcomes
        self._metrics = metrics
        self._poll_paused = poll_paused
        self._shutdown = shutdown
        self._stop_requested = stop_requested
        self._retry_policy = retry_policy
        self._clock = clock
        self._delivery_wait = DeliveryWait(poll_paused, lambda: reassignment.disowned, clock)
        self._failed_rounds = 0

    def deliver_due(self, *, everything: bool = False) -> None:
        """Deliver every endpoint due now (``everything``: every endpoint holding records)."""
        for endpoint in self._pending.due(self._clock(), everything=everything):
            self._deliver_endpoint(endpoint)

    def _deliver_endpoint(self, endpoint: Endpoint) -> None:
        stops = self._dead_lettering.stops
        if stops:
            # Stopping on a record (on_poison = "stop"): the records still buffered after it on
            # its partition (after the last record rejected with it) are not sent, since they
            # stay uncommitted and a restart reads them again. Records after it that had gone
            # out before it was found (in its own request, when Mixpanel rejected it alone, or
            # in a request to another endpoint delivered before) were sent all the same: the
            # skip the stop's message advises commits past those Mixpanel accepted, and a
            # restart without a skip sends them again ($insert_id deduplicates events, nothing
            # does profile and group updates).
            self._pending.drop_after({stop.progress.partition: stop.last for stop in stops})
        items = self._pending.take(endpoint)
        if not items:
            return
        self._reassignment.delivery_out(item.progress.partition for item in items)
        self._delivery_wait.round_started()
        try:
            try:
                reports = self._deliver(
                    endpoint,
                    [item.message for item in items],
                    self._delivery_wait,
                    self._shutdown.deadline,
                )
            finally:
                self._reassignment.delivery_returned()
        except AuthenticationError as refused:
            self._settle_refused(endpoint, items, refused)
            self._reassignment.reread_returned(stopping=True)
            raise
        failed = self._apply_reports(items, reports)
        self._reassignment.reread_returned()
        # Those of partitions read again (just above) are in Kafka's hands again.
        failed = [item for item in failed if self._tracker.is_current(item.progress)]
        if not failed:
            self._failed_rounds = 0
            return
        self._retry_later(endpoint, failed, reports)

    def _apply_reports(
        self, items: Sequence[PendingRecord], reports: Sequence[DeliveryReport]
    ) -> list[PendingRecord]:
        """Mark the accepted records done and dead-letter the rejected ones; returns the
        failed ones still worth retrying, each counting the requests made for it so far.

        The accepted ones come first: a rejected record may stop the forwarder (under
        ``on_poison = "stop"``, or when the dead-letter topic refuses it), and what Mixpanel
        accepted must be committed all the same.
        """
        failed: list[PendingRecord] = []
        rejected: list[tuple[PendingRecord, DeliveryReport]] = []
        outcomes = self._outcomes
        observed = outcomes.observed
        resent = 0
        for item, report in zip(items, reports, strict=True):
            resent += max(0, report.attempts - 1)
            status = report.status
            if status is DeliveryStatus.ACCEPTED:
                item.progress.done(item.offset)
                self._metrics.delivered += 1
                if observed:
                    outcomes.keep(with_earlier_attempts(report, item))
            elif status is DeliveryStatus.REJECTED or self._not_to_resend(report):
                rejected.append((item, with_earlier_attempts(report, item)))
            elif self._tracker.is_current(item.progress):
                # Counted on the record: the round that ends in its dead letter reports only
                # its own requests, and the header must say how many were made in all.
                failed.append(item._replace(attempts=item.attempts + report.attempts))
            # else: its partition was revoked meanwhile and the record will be read again from
            # Kafka (by this consumer or the partition's new owner); retrying it here too would
            # only send it twice.
        # Counted once the delivery returns: its reports are what says how often each record
        # was sent (a request split in halves resends fewer records than the whole batch).
        self._metrics.retried += resent
        # Records of one partition rejected with the same reason and status: a request Mixpanel
        # rejected whole, its records applied or not, which cannot be told (status 0 from
        # /engage or /groups). Under on_poison = "stop" they are one stop: skipping only the
        # first would send the others again, and apply again those Mixpanel took.
        shared: dict[tuple[Any, str | None, int | None], list[int]] = {}
        for item, report in rejected:
            key = (item.progress, report.reason, report.http_status)
            shared.setdefault(key, []).append(item.offset)
        for item, report in rejected:
            self._metrics.rejected += 1
            if not self._tracker.is_current(item.progress):
                # Its partition is another member's now (or may come back, to be read again
                # here): the one who reads it next dead-letters it, once.
                continue
            together = shared[(item.progress, report.reason, report.http_status)]
            self._dead_lettering.send(
                item.progress,
                item.raw,
                DELIVERY_STAGE,
                report.reason or "rejected by Mixpanel",
                http_status=report.http_status,
                field=report.field,
                attempts=report.attempts,
                outcome=report if observed else None,
                together=sorted(offset for offset in together if offset > item.offset),
                maybe_applied=report.status is not DeliveryStatus.REJECTED,
                # Refused with the others of its request by a status 0 naming none, which may
                # have held other partitions' records too. Told by its reason, not by
                # maybe_applied: a record refused by name after an attempt that went
                # unanswered says that too (review R58 F1).
                in_refused_request=report.status is DeliveryStatus.REJECTED
                and refused_in_part(report.reason),
            )
        return failed

    def _settle_refused(
        self, endpoint: Endpoint, items: Sequence[PendingRecord], refused: AuthenticationError
    ) -> None:
        """Settle what a call that ended in a 401/403 had settled before the refusal.

        Its other requests (earlier parts of a batch split over several, other credential
        groups) may have been accepted or rejected: left undone, they would be sent again after
        the restart, and people and group updates (``$add``, ``$append``) applied twice. The
        records the refusal left unsent (FAILED) stay undone, and are read again.
        """
        reports = refused.reports
        if len(reports) != len(items):
            # Not the contract (one report per record): nothing from it can be trusted.
            logger.warning(
                "the refused %s call reported %d outcomes for %d records: none is committed",
                endpoint,
                len(reports),
                len(items),
            )
            return
        try:
            self._apply_reports(items, reports)
        except ForwarderError as exc:
            # A rejected record that cannot be dead-lettered stops the forwarder too; the
            # refused credentials are what the operator must fix first, so they are raised.
            logger.warning("stopping on refused credentials; also: %s", exc)

    def _retry_later(
        self, endpoint: Endpoint, failed: list[PendingRecord], reports: Sequence[DeliveryReport]
    ) -> None:
        if self._stop_requested.is_set() and self._shutdown.passed():
            logger.warning(
                "shutdown deadline passed: %d %s records left undelivered and uncommitted (%s)",
                len(failed),
                endpoint,
                first_failure(reports),
            )
            return
        self._failed_rounds += 1
        self._metrics.retried += len(failed)  # the next round's sends of them
        # Mixpanel's advice for 429 holds between rounds too: its own, slower schedule, and
        # the server's Retry-After as the least wait, as for the client's own retries (one
        # longer than the client's retry budget is what ended the round early).
        delay = self._retry_policy.delay(
            self._failed_rounds,
            rate_limited=rate_limited(reports),
            retry_after=longest_retry_after(reports),
        )
        logger.warning(
            "%d %s records not delivered (%s); trying again in %.1fs",
            len(failed),
            endpoint,
            first_failure(reports),
            delay,
        )
        self._pending.put_back(endpoint, failed, self._clock())
        self._poll_paused(delay)

    def _not_to_resend(self, report: DeliveryReport) -> bool:
        """A profile or group update that failed after an attempt Mixpanel may have applied:
        sent again in every later round, an ``$add`` was applied again and again (31 times in
        10 s, in a review; 42 times under ``on_poison = "stop"`` against a Mixpanel slower
        than ``read_timeout``), so it is dead-lettered, as a ``status: 0``'s records are, for
        an operator to check; under ``on_poison = "stop"`` it is a stop, whose advice says
        how to check (see ``poison_stop_advice``). Events are sent again: Mixpanel counts them
        once, by ``$insert_id``. Not once the shutdown deadline passed: a dead letter then is
        not acknowledged before the exit, and the record, left uncommitted, is read again by
        the next forwarder, as every record not done is."""
        message = report.message
        return (
            report.maybe_applied
            and message is not None
            and message.endpoint in ("engage", "groups")
            and not (self._stop_requested.is_set() and self._shutdown.passed())
        )
