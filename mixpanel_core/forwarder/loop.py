"""``Forwarder``: poll Kafka, decode, deliver to Mixpanel, dead-letter, commit; one thread.

Every Kafka call happens on the thread that calls ``run`` (kafka-python's consumer is not
thread-safe); ``request_stop`` is the one method meant for other threads and signal handlers.
While a delivery backs off (429, 5xx, network), ``wait`` keeps calling ``poll()`` with every
partition paused, so the member stays in its group. Between deliveries the partitions stay
paused while records wait to be retried or an endpoint holds a full batch, so memory stays
bounded however long Mixpanel fails.

On a rebalance the records buffered for revoked partitions are dropped. A partition assigned
back to this consumer keeps its fetch position in kafka-python, so it is sent back (``seek``)
to its first record not done; the others start from the group's commit, which never passes
a record not done. A delivery out at the rebalance goes on: a partition that comes back while
it is out gets its progress back, so what the delivery gets accepted counts and is committed,
and is sent back once it returns; records of partitions another member owns now are not
retried (``wait`` stops the delivery) and get no report: their new owner reads them again.
While a request waits for its answer the ingestion client keeps calling the forwarder's
``wait`` too (``DeliveryWait``), so polling, rebalances and the lag go on meanwhile.

Given a ``report`` function (``Pipeline.report``, when some plugin implements
``mixpanel_delivered``), each record's final outcome is reported once it is true: ACCEPTED once
Mixpanel accepted it; REJECTED (Mixpanel refused it) or DROPPED (undecodable, or refused by
the ``mixpanel_validate`` hooks) once its dead letter is acknowledged. Reports wait until
after each turn's commit, so an observer never delays one. Records retried, abandoned at
shutdown or dropped at a rebalance are read again later and get no report now.

When Mixpanel refuses the credentials (401/403) the forwarder stops, but first it settles what
the refused call had settled: the records of its requests Mixpanel accepted before the refusal
(an earlier request of a split batch, another credential group) are done and committed, the
ones it rejected are dead-lettered, so a restart sends only what was not accepted.

Sending dead letters, waiting for their acknowledgements (and how long those waits may last)
and marking their records done is left to ``DeadLettering`` (``dead_lettering``).

Under ``on_poison = "stop"`` a record that would be dead-lettered requests a stop as soon as
it is found, even in the middle of a delivery round: nothing further is read on its partition,
what was read before it is delivered within the shutdown deadline and committed, and only then
``run`` raises, saying whether skipping the record (committing the offset it names) loses
nothing. Records Mixpanel rejected together, in one answer for a whole request, are one stop.

How long commits and the other Kafka calls that wait for the broker may take, before and after
a stop, is ``ShutdownClock``'s (``shutdown_clock``); committing is ``OffsetCommitter``'s
(``commits``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.forwarder.commits import OffsetCommitter
from mixpanel_core.forwarder.config import ForwarderConfig, ForwarderError
from mixpanel_core.forwarder.dead_lettering import DeadLettering
from mixpanel_core.forwarder.dead_letters import DELIVERY_STAGE, DeadLetterWriter
from mixpanel_core.forwarder.decode import DECODE_STAGE, Poison, Validate, decode
from mixpanel_core.forwarder.idle_watch import IdleWatch
from mixpanel_core.forwarder.lag import LOG_ENDS_TIMEOUT, LagMeter, topic_log_ends
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.forwarder.offsets import OffsetTracker, PartitionProgress, Resume
from mixpanel_core.forwarder.pending import PendingBatches, PendingRecord
from mixpanel_core.forwarder.poison_stop_advice import poison_stop_error
from mixpanel_core.forwarder.progress import ProgressReporter
from mixpanel_core.forwarder.rebalance import Change, rebalance_listener
from mixpanel_core.forwarder.round_reports import (
    RetryLog,
    first_failure,
    longest_retry_after,
    rate_limited,
    with_earlier_attempts,
)
from mixpanel_core.forwarder.shutdown_clock import ShutdownClock
from mixpanel_core.ingestion import Deadline, RetryPolicy, Wait, WaitWhileOut
from mixpanel_core.ingestion.http import Response
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.log_ends import LogEnds
from mixpanel_core.messages import Endpoint, Message

logger = logging.getLogger("mixpanel_core.forwarder")


REPORTER = "forwarder"
"""``DeliveryReport.transport`` of the forwarder's reports (its ingestion client's name too)."""


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


POLL_INTERVAL = 0.1
"""Longest a ``poll()`` blocks, so linger, signals and the catch-up check stay responsive."""
CAUGHT_UP_CHECK_INTERVAL = 0.5
POLL_WHILE_OUT_AFTER = 1.0
"""Seconds a request may be out before the forwarder polls (partitions paused) while it waits:
each such poll pauses every partition and costs a turn of the loop, so quick requests are left
alone; a slow one does not hold a rebalance, the lag or the progress line for longer than
this."""


class DeliveryWait(WaitWhileOut):
    """The ``wait`` a delivery is given: ``__call__`` between retries, ``while_request_out``
    while a request waits for its answer, ``request_answered`` when it has one (see
    ``WaitWhileOut``). Every call goes to the forwarder."""

    __slots__ = ("_answered", "_between_retries", "_while_out")

    def __init__(
        self,
        between_retries: Wait,
        while_out: Callable[[float], None],
        answered: Callable[[Response | BaseException], None],
    ) -> None:
        self._between_retries = between_retries
        self._while_out = while_out
        self._answered = answered

    def __call__(self, seconds: float) -> bool | None:
        return self._between_retries(seconds)

    def while_request_out(self, seconds: float) -> None:
        self._while_out(seconds)

    def request_answered(self, answer: Response | BaseException) -> None:
        self._answered(answer)


class Forwarder:
    """Consumes ``topic`` with ``consumer`` and delivers through ``deliver``.

    ``consumer`` is a kafka-python ``KafkaConsumer`` built with auto-commit off and not yet
    subscribed; ``dead_letters`` is ``None`` only under ``on_poison = "stop"``.
    ``group_reader``, needed by ``run(until_caught_up=True)``, is a second ``KafkaConsumer`` of
    the same group that never subscribes: it reads the group's committed offsets. Asking the
    subscribed consumer instead disturbs its group join (it keeps re-joining). ``idle_reader``
    builds another such consumer, for the ``idle_warning`` (see ``IdleWatch``); without it, no
    idle warning is given.
    ``report`` receives each record's final outcome (see the module docstring); leave it
    ``None`` when nothing observes them, and no report is built.
    """

    def __init__(
        self,
        consumer: Any,
        topic: str,
        deliver: Deliver,
        config: ForwarderConfig,
        *,
        dead_letters: DeadLetterWriter | None = None,
        group_reader: Any = None,
        idle_reader: Callable[[], Any] | None = None,
        retry_policy: RetryPolicy | None = None,
        metrics: ForwarderMetrics | None = None,
        progress: ProgressReporter | None = None,
        clock: Callable[[], float] = time.monotonic,
        validate: Validate | None = None,
        report: Reporter | None = None,
    ) -> None:
        if dead_letters is None and config.on_poison == "dead_letter":
            raise ForwarderError('on_poison = "dead_letter" needs a dead-letter writer')
        self._consumer = consumer
        self._topic = topic
        self._deliver = deliver
        self._config = config
        self._group_reader = group_reader
        self._retry_policy = retry_policy or RetryPolicy()
        self.metrics = metrics or ForwarderMetrics()
        self._progress = progress or ProgressReporter(self.metrics, config.log_interval)
        self._clock = clock
        self._validate = validate
        self._report = report
        self._outcomes: list[DeliveryReport] | None = [] if report is not None else None
        """Final outcomes waiting to be reported after the turn's commit (``None``: unobserved)."""
        self._tracker = OffsetTracker()
        self._pending = PendingBatches(config.batch_records, config.linger)
        self._changes: queue.SimpleQueue[Change] = queue.SimpleQueue()
        self._joined = False
        """Whether the group gave this member its partitions (none, maybe) at least once."""
        self._rewind: dict[Any, Resume] = {}
        """Revoked partitions whose dropped records must be read again if they come back."""
        self._in_flight: Counter[Any] = Counter()
        """Records of the delivery out (there is one at a time), by partition."""
        self._held: dict[Any, tuple[PartitionProgress, int | None]] = {}
        """Revoked partitions that had records in the delivery out: their progress (which that
        delivery keeps marking) and their ``Resume.committed``, until the next assignment."""
        self._back: dict[Any, int | None] = {}
        """Partitions assigned back while a delivery of their records was out, with their
        ``Resume.committed``: sent back to their first record not done once it returns."""
        self._disowned = 0
        """Records of the delivery out whose partition another member owns now: while any,
        the delivery stops retrying (their new owner reads them again)."""
        self._retry_log = RetryLog(clock)
        self._out_since: float | None = None
        """When the request now out was first seen waiting (see ``_while_request_out``)."""
        self._delivery_wait = DeliveryWait(
            self._retry_wait, self._while_request_out, self._request_answered
        )
        self._stop_requested = threading.Event()
        self._shutdown = ShutdownClock(clock, config.shutdown_deadline)
        self._dead_lettering = DeadLettering(
            dead_letters,
            self.metrics,
            clock=clock,
            shutdown_deadline=self._shutdown.deadline,
            keep_outcome=self._keep_outcome,
            stop=self.request_stop,
        )
        self._failed_rounds = 0
        self._lag = LagMeter(consumer, self._tracker, self.metrics)
        self._idle = IdleWatch(
            idle_reader, topic, config.group_id, config.idle_warning, self.metrics
        )
        self._commits = OffsetCommitter(consumer, self._tracker, self.metrics, self._shutdown)
        self._kafka_error = kafka_python().errors.KafkaError

    # -- public -----------------------------------------------------------------------------

    @property
    def config(self) -> ForwarderConfig:
        return self._config

    def request_stop(self) -> None:
        """Stop fetching, deliver what is buffered within the shutdown deadline, commit, leave.

        Safe from signal handlers and other threads. The deadline counts from here: a request
        out at this moment is abandoned when it passes, however long its timeouts.
        """
        self._shutdown.start()
        self._stop_requested.set()

    def run(self, *, until_caught_up: bool = False) -> None:
        """Forward until ``request_stop`` (or, with ``until_caught_up``, until the group has
        delivered everything that was in the topic when it started).

        Raises ``AuthenticationError`` on 401/403 and ``ForwarderError`` when it must stop;
        either way it first commits what was delivered or dead-lettered, and nothing else
        (after a 401/403, including what the refused call got accepted before the refusal;
        under ``on_poison = "stop"``, after delivering what was read before the record).
        """
        if until_caught_up and self._group_reader is None:
            raise ForwarderError("until_caught_up needs a group_reader (see Forwarder)")
        targets = topic_log_ends(self._group_reader, self._topic) if until_caught_up else None
        self._consumer.subscribe([self._topic], listener=rebalance_listener(self._changes))
        checked_at = self._clock()
        try:
            while not self._stop_requested.is_set():
                self._pause_while_backlogged()
                self._poll(self._poll_timeout())
                self._deliver_due()
                self._dead_lettering.settle()
                # Under on_poison = "stop" the record to stop at requested the stop when it was
                # found (see DeadLettering): the loop ends as after a SIGTERM, delivering and
                # committing what was read before the record within the shutdown deadline, and
                # only then raises: a skip past the record must not lose the records before it.
                if not self._stop_requested.is_set():
                    # Once a stop is requested _shut_down commits (and reports after it): one
                    # commit, within the deadline, rather than one here and one there.
                    self._commits.commit()
                    self._report_outcomes()
                now = self._clock()
                self._observe(now)
                if targets is not None and now - checked_at >= CAUGHT_UP_CHECK_INTERVAL:
                    checked_at = now
                    if self._caught_up(targets):
                        logger.info("caught up with every record that was in %s", self._topic)
                        break
            self._shut_down()
            if self._dead_lettering.stops:
                raise poison_stop_error(
                    self._dead_lettering.stops, self._tracker, self._config.group_id
                )
        except AuthenticationError:
            # Dead letters of this turn (poison read, records the refused call got rejected)
            # are committed only once acknowledged.
            self._dead_lettering.settle_before_stopping()
            self._commits.commit()
            self._report_outcomes()
            raise
        except ForwarderError:
            self._commits.commit()
            self._report_outcomes()
            raise
        finally:
            self._close()

    # -- reading ----------------------------------------------------------------------------

    def _poll_timeout(self) -> float:
        due_in = self._pending.next_due_in(self._clock())
        return POLL_INTERVAL if due_in is None else min(POLL_INTERVAL, due_in)

    def _pause_while_backlogged(self) -> None:
        """Read more only when the buffer has room: otherwise poll with every partition paused.

        Polling goes on either way, so the member stays in its group.
        """
        consumer = self._consumer
        if self._pending.backlogged:
            # Every turn: a rebalance may have assigned partitions that are not paused yet.
            consumer.pause(*consumer.assignment())
        else:
            paused = consumer.paused()
            if paused:
                consumer.resume(*paused)

    def _poll(self, timeout: float) -> None:
        batches = self._consumer.poll(timeout_ms=int(timeout * 1000))
        # Rebalance notes first: records in this poll belong to the assignment they describe.
        rewound = self._apply_rebalance_changes()
        if batches:
            now = self._clock()
            for partition, records in batches.items():
                # Fetched from the position kept over the rebalance, past the records dropped:
                # the seek reads them again, in order, from the next poll on.
                if partition not in rewound:
                    self._take(partition, records, now)

    def _take(self, partition: Any, records: Sequence[Any], now: float) -> None:
        progress = self._tracker.progress(partition)
        topic, number = partition.topic, partition.partition
        self.metrics.consumed += len(records)
        dead_lettering = self._dead_lettering
        if dead_lettering.stopped_at(partition) is not None:
            return  # the partition's record to stop at was read: see below
        for raw in records:
            progress.read(raw.offset)
            decoded = decode(topic, number, raw.offset, raw.value, raw.headers, self._validate)
            if isinstance(decoded, Poison):
                self.metrics.poison += 1
                dead_lettering.send(
                    progress,
                    raw,
                    DECODE_STAGE,
                    decoded.reason,
                    field=decoded.field,
                    outcome=self._poison_report(decoded),
                )
                if dead_lettering.stopped_at(partition) is not None:
                    # on_poison = "stop": what follows the record on its partition stays
                    # unread, so it is neither delivered now nor delivered again after a skip.
                    break
            else:
                self._pending.add(PendingRecord(progress, raw.offset, decoded, raw), now)

    def _apply_rebalance_changes(self) -> set[Any]:
        """Act on the listener's notes, in order; returns the partitions sent back by ``seek``."""
        rewound: set[Any] = set()
        while True:
            try:
                kind, partitions = self._changes.get_nowait()
            except queue.Empty:
                return rewound
            if kind == "revoked":
                self._revoked(partitions)
            else:
                rewound |= self._assigned(partitions)

    def _revoked(self, partitions: frozenset[Any]) -> None:
        if not partitions:
            return  # every join starts with a revocation, of nothing the first time
        dropped = self._pending.drop(partitions)
        # A delivery out keeps marking the progress of its records: kept, for a partition
        # that comes back to this consumer while it is out (see _assigned).
        in_flight = {
            partition: self._tracker.current(partition)
            for partition in partitions
            if self._in_flight[partition]
        }
        for partition in partitions:
            self._back.pop(partition, None)
        # Kept until the assignment is known: only then is it clear who reads them again.
        resume = self._tracker.revoke(partitions)
        self._rewind.update(resume)
        for partition, progress in in_flight.items():
            if progress is not None:
                gone = resume.get(partition)
                self._held[partition] = (progress, None if gone is None else gone.committed)
        self._lag.assignment_changed()
        self.metrics.lag = {
            k: v
            for k, v in self.metrics.lag.items()
            if not any((p.topic, p.partition) == k for p in partitions)
        }
        logger.info(
            "partitions revoked: %s (dropped %d buffered records, and %d of their records are "
            "in a delivery still out; they will be read again unless it gets them accepted "
            "and the partition comes back)",
            _names(partitions),
            dropped,
            sum(self._in_flight[partition] for partition in partitions),
        )

    def _assigned(self, partitions: frozenset[Any]) -> set[Any]:
        """Send partitions assigned back to this consumer to their first record not done.

        kafka-python keeps the fetch position of a partition its consumer gets back (eager
        assignors revoke everything, then hand most of it back), so without the seek the
        records dropped at the revocation would never be read again, and a later commit
        would skip them. A partition that comes back while a delivery of its records is out
        gets its progress back, so that what the delivery gets accepted counts and is
        committed; it is sent back once the delivery returns (``_reread_returned``).
        """
        logger.info("partitions assigned: %s", _names(partitions))
        self._joined = True
        self._lag.assignment_changed()
        # Several rebalances may be noted at once: seek only what is assigned now.
        current = self._consumer.assignment()
        rewound = set()
        for partition in sorted(partitions & current):
            resume = self._rewind.get(partition)
            held = self._held.pop(partition, None)
            if held is not None:
                progress, committed = held
                if self._in_flight[partition]:
                    self._tracker.restore(partition, progress, committed)
                    self._back[partition] = committed
                    rewound.add(partition)  # what this poll fetched is read again later
                    logger.info(
                        "%s[%d] is back while %d of its records are in a delivery still out: "
                        "what it gets accepted will be committed, and the partition read "
                        "again from its first record not done once it returns",
                        partition.topic,
                        partition.partition,
                        self._in_flight[partition],
                    )
                    continue
                # The delivery returned before the partition came back: what it got
                # accepted is not read again, nor what it dead-lettered (settled first: an
                # unacknowledged dead letter would leave its record the first not done).
                self._dead_lettering.settle_before_stopping()
                offset = progress.committable
                if offset is not None:
                    resume = Resume(offset, committed)
            if resume is None:
                continue
            self._consumer.seek(partition, resume.offset)
            self._tracker.resume(partition, resume)
            rewound.add(partition)
            logger.info(
                "reading %s[%d] again from offset %d (its buffered records were dropped)",
                partition.topic,
                partition.partition,
                resume.offset,
            )
        # The revoked partitions not handed back are other members' now: they start from the
        # group's commit, which never passes a record this consumer had not done. The records
        # of theirs in the delivery out are no longer worth retrying.
        disowned = sum(self._in_flight[p] for p in self._held if p not in current)
        if disowned:
            self._disowned += disowned
            logger.info(
                "%d records of the delivery out belong to partitions another member owns "
                "now: they are not retried (their new owner reads them again)",
                disowned,
            )
        self._held.clear()
        self._rewind.clear()
        return rewound

    # -- delivering -------------------------------------------------------------------------

    def _deliver_due(self, *, everything: bool = False) -> None:
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
        self._in_flight = Counter(item.progress.partition for item in items)
        self._disowned = 0
        self._out_since = None
        try:
            try:
                reports = self._deliver(
                    endpoint,
                    [item.message for item in items],
                    self._delivery_wait,
                    self._shutdown.deadline,
                )
            finally:
                self._in_flight = Counter()
                self._retry_log.round_ended()
        except AuthenticationError as refused:
            self._settle_refused(endpoint, items, refused)
            self._reread_returned(stopping=True)
            raise
        failed = self._apply_reports(items, reports)
        self._reread_returned()
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
        resent = 0
        for item, report in zip(items, reports, strict=True):
            resent += max(0, report.attempts - 1)
            status = report.status
            if status is DeliveryStatus.ACCEPTED:
                item.progress.done(item.offset)
                self.metrics.delivered += 1
                if outcomes is not None:
                    outcomes.append(with_earlier_attempts(report, item))
            elif status is DeliveryStatus.REJECTED:
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
        self.metrics.retried += resent
        # Records of one partition rejected with the same reason and status: a request Mixpanel
        # rejected whole, its records applied or not, which cannot be told (status 0 from
        # /engage or /groups). Under on_poison = "stop" they are one stop: skipping only the
        # first would send the others again, and apply again those Mixpanel took.
        shared: dict[tuple[Any, str | None, int | None], list[int]] = {}
        for item, report in rejected:
            key = (item.progress, report.reason, report.http_status)
            shared.setdefault(key, []).append(item.offset)
        for item, report in rejected:
            self.metrics.rejected += 1
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
                outcome=report if outcomes is not None else None,
                together=sorted(offset for offset in together if offset > item.offset),
            )
        return failed

    def _reread_returned(self, *, stopping: bool = False) -> None:
        """Send the partitions assigned back while the delivery was out to their first record
        not done, now that the delivery's reports are applied: what it got accepted is
        committed at the next commit, and not read again; the rest is."""
        if not self._back:
            return
        # The round's dead letters first: a record dead-lettered is done once the broker has
        # its dead letter, and a seek to it would send it, and every record after it, again.
        if stopping:
            self._dead_lettering.settle_before_stopping()
        else:
            self._dead_lettering.settle()
        for partition, committed in self._back.items():
            progress = self._tracker.current(partition)
            offset = None if progress is None else progress.committable
            if offset is None:
                continue
            self._consumer.seek(partition, offset)
            self._tracker.resume(partition, Resume(offset, committed))
            logger.info(
                "reading %s[%d] again from offset %d (its records not done when it was "
                "revoked and assigned back during a delivery)",
                partition.topic,
                partition.partition,
                offset,
            )
        self._back.clear()

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
        self.metrics.retried += len(failed)  # the next round's sends of them
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
        self._wait(delay)

    def _retry_wait(self, seconds: float) -> bool:
        """The client's wait before a retry: ``_wait``, but ``False`` (stop retrying) at once
        when records of the delivery belong to partitions another member owns now; those of
        partitions still owned are put back and tried again in the next round."""
        self._out_since = None  # an abandoned request is not answered
        if not self._disowned:
            self._retry_log.retrying()
            self._wait(seconds, until_disowned=True)
        return not self._disowned

    def _while_request_out(self, seconds: float) -> None:
        """What the client calls while a request waits for its answer: after
        ``POLL_WHILE_OUT_AFTER`` seconds, ``_wait``; before, it returns at once."""
        now = self._clock()
        if self._out_since is None:
            self._out_since = now
        if now - self._out_since >= POLL_WHILE_OUT_AFTER:
            self._wait(seconds)

    def _request_answered(self, answer: Response | BaseException) -> None:
        self._out_since = None
        self._retry_log.answered(answer)

    def _wait(self, seconds: float, *, until_disowned: bool = False) -> None:
        """Sleep ``seconds`` while polling with every partition paused (the client's ``wait``,
        between retries and while a request is out).

        The partitions stay paused afterwards: the main loop resumes them once the buffer has
        room (``_pause_while_backlogged``). Once the shutdown deadline has passed it returns
        rather than raise: ``deliver`` then starts no further request and reports what is left
        FAILED, so the records an earlier request of the same batch delivered (a batch split
        over several requests) keep their ACCEPTED reports and get committed, instead of being
        sent again by the next forwarder.
        """
        end = self._clock() + seconds
        consumer = self._consumer
        while True:
            now = self._clock()
            if self._stop_requested.is_set():
                self._shutdown.start()
                if self._shutdown.passed():
                    return
                assert self._shutdown.by is not None  # set by start()
                end = min(end, self._shutdown.by)
            if now >= end:
                return
            if until_disowned and self._disowned:
                return  # the delivery stops retrying (see _retry_wait)
            # Re-pause on every turn: a rebalance may have assigned new partitions.
            consumer.pause(*consumer.assignment())
            self._poll(min(end - now, POLL_INTERVAL))
            # A wait may last most of the retry budget: the lag and the progress line keep
            # moving meanwhile (rate-limited as in the main loop).
            self._observe(self._clock())

    # -- reporting --------------------------------------------------------------------------

    def _poison_report(self, poison: Poison) -> DeliveryReport | None:
        """The report of a record dead-lettered at decoding; ``None`` when nothing observes.

        DROPPED, as the pipeline reports what its ``mixpanel_validate`` hooks refuse: never
        sent. ``message`` is ``None`` when the record could not become a message at all.
        """
        if self._outcomes is None:
            return None
        return DeliveryReport(
            poison.message, DeliveryStatus.DROPPED, REPORTER, poison.reason, field=poison.field
        )

    def _keep_outcome(self, outcome: DeliveryReport) -> None:
        """Keep ``outcome`` for ``_report_outcomes`` (a dead letter's, once acknowledged)."""
        if self._outcomes is not None:
            self._outcomes.append(outcome)

    def _report_outcomes(self) -> None:
        """Hand the outcomes gathered since the last call to ``report``.

        Called after the commit, so that a slow observer never holds one back; ``report``
        (``Pipeline.report``) logs what an observer raises and carries on.
        """
        outcomes = self._outcomes
        if not outcomes or self._report is None:
            return
        self._outcomes = []
        report = self._report
        for outcome in outcomes:
            report(outcome)

    # -- stopping ---------------------------------------------------------------------------

    def _shut_down(self) -> None:
        """Stop fetching; deliver what is buffered within the deadline; commit."""
        self._shutdown.start()
        self._consumer.pause(*self._consumer.assignment())
        # What is done already is committed before the last deliveries: their retry waits
        # poll Kafka, and a rebalance meanwhile (a replica joining or leaving in a rolling
        # deploy) would make this forwarder forget it, and the partition's next owner deliver
        # it again (a profile $add applied twice).
        answered = self._commits.commit()
        self._report_outcomes()
        while len(self._pending) and not self._shutdown.passed():
            self._deliver_due(everything=True)
        self._dead_lettering.settle()
        if answered:
            # A broker that did not answer the first commit in the time left will not answer
            # this one either: the exit is not held for it. One that refused it (a rebalance
            # under way) may take it now, after the deliveries' polls let the rebalance end.
            self._commits.commit()
        self._report_outcomes()

    def _close(self) -> None:
        self._idle.close()
        try:
            # The last measure may predate the final deliveries and commit: the closing line
            # must show the lag the forwarder leaves behind.
            self._lag.measure(LOG_ENDS_TIMEOUT)
        except self._kafka_error as exc:
            logger.warning("measuring the lag at exit: %s", exc)
        self._progress.finish()
        try:
            # Leaving the group now lets the others take over the partitions at once; after a
            # stop, only within the deadline (kafka-python waits request_timeout_ms otherwise).
            self._consumer.close(autocommit=False, timeout_ms=self._shutdown.kafka_timeout_ms())
        except self._kafka_error as exc:
            logger.warning("closing the consumer: %s", exc)
        self._dead_lettering.close()
        # This runs in run()'s finally: raising here would hide the error that ended the run.
        if self._group_reader is not None:
            try:
                self._group_reader.close(
                    autocommit=False, timeout_ms=self._shutdown.kafka_timeout_ms()
                )
            except Exception as exc:
                logger.warning(
                    "closing the committed-offsets reader: %s: %s", type(exc).__name__, exc
                )

    # -- observing --------------------------------------------------------------------------

    def _observe(self, now: float) -> None:
        self._lag.measure_when_due(now, self._shutdown.by)
        assigned = len(self._consumer.assignment())
        self.metrics.assigned_partitions = assigned
        if self._shutdown.by is None:
            self._idle.tick(now, assigned > 0)
        self._progress.tick(now)

    def _caught_up(self, targets: LogEnds) -> bool:
        """Whether the group committed at least ``targets`` on every partition; the ones this
        member reads must have been fetched first (see ``LogEnds``)."""
        if len(self._pending) or self._dead_lettering.unsettled or not self._joined:
            return False
        if not targets.checked(self._consumer, self._consumer.assignment()):
            return False
        for partition, end in targets.offsets.items():
            if end == 0:
                continue
            committed = self._group_reader.committed(partition)
            if committed is None or committed < end:
                return False
        return True


def _names(partitions: frozenset[Any]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in sorted(partitions)) or "none"
