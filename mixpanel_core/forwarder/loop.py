"""``Forwarder``: poll Kafka, decode, deliver to Mixpanel, dead-letter, commit; one thread.

Every Kafka call happens on the thread that calls ``run`` (kafka-python's consumer is not
thread-safe); ``request_stop`` is the one method meant for other threads and signal handlers.
While a delivery backs off (429, 5xx, network), ``wait`` keeps calling ``poll()`` with every
partition paused, so the member stays in its group. Between deliveries the partitions stay
paused while records wait to be retried or an endpoint holds a full batch, so memory stays
bounded however long Mixpanel fails.

Each turn polls, delivers what is due, settles the dead letters, commits, and only then
reports the outcomes. Acting on rebalances, including partitions that move while a delivery is
out, is ``Reassignment``'s (``reassignment``). Delivering a round and applying its reports
(retries, dead letters, a 401/403) is ``DeliveryRounds``'s (``delivery_rounds``); every wait of
a round comes back to this loop (``_wait``, through ``DeliveryWait`` while the ingestion client
waits), so polling, rebalances and the lag go on meanwhile. Reporting each record's final
outcome after the commit is ``Outcomes``'s (``outcomes``).

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
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from mixpanel_core.delivery import Reporter
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.forwarder.commits import OffsetCommitter
from mixpanel_core.forwarder.config import ForwarderConfig, ForwarderError
from mixpanel_core.forwarder.dead_lettering import DeadLettering
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.forwarder.decode import DECODE_STAGE, Poison, Validate, decode
from mixpanel_core.forwarder.delivery_rounds import Deliver, DeliveryRounds
from mixpanel_core.forwarder.idle_watch import IdleWatch
from mixpanel_core.forwarder.lag import LOG_ENDS_TIMEOUT, LagMeter, topic_log_ends
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.forwarder.offsets import OffsetTracker
from mixpanel_core.forwarder.outcomes import Outcomes
from mixpanel_core.forwarder.pending import PendingBatches, PendingRecord
from mixpanel_core.forwarder.poison_stop_advice import poison_stop_error
from mixpanel_core.forwarder.progress import ProgressReporter
from mixpanel_core.forwarder.reassignment import Reassignment
from mixpanel_core.forwarder.shutdown_clock import ShutdownClock
from mixpanel_core.ingestion import RetryPolicy
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.log_ends import LogEnds

logger = logging.getLogger("mixpanel_core.forwarder")


POLL_INTERVAL = 0.1
"""Longest a ``poll()`` blocks, so linger, signals and the catch-up check stay responsive."""
CAUGHT_UP_CHECK_INTERVAL = 0.5


class Forwarder:
    """Consumes ``topic`` with ``consumer`` and delivers through ``deliver``.

    ``consumer`` is a kafka-python ``KafkaConsumer`` built with auto-commit off and not yet
    subscribed; ``dead_letters`` is ``None`` only under ``on_poison = "stop"``.
    ``group_reader``, needed by ``run(until_caught_up=True)``, is a second ``KafkaConsumer`` of
    the same group that never subscribes: it reads the group's committed offsets. Asking the
    subscribed consumer instead disturbs its group join (it keeps re-joining). ``idle_reader``
    builds another such consumer, for the ``idle_warning`` (see ``IdleWatch``); without it, no
    idle warning is given.
    ``report`` receives each record's final outcome (see ``outcomes``); leave it
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
        self._config = config
        self._group_reader = group_reader
        self.metrics = metrics or ForwarderMetrics()
        self._progress = progress or ProgressReporter(self.metrics, config.log_interval)
        self._clock = clock
        self._validate = validate
        self._outcomes = Outcomes(report)
        self._tracker = OffsetTracker()
        self._pending = PendingBatches(config.batch_records, config.linger)
        self._stop_requested = threading.Event()
        self._shutdown = ShutdownClock(clock, config.shutdown_deadline)
        self._dead_lettering = DeadLettering(
            dead_letters,
            self.metrics,
            clock=clock,
            shutdown_deadline=self._shutdown.deadline,
            keep_outcome=self._outcomes.keep,
            stop=self.request_stop,
        )
        self._lag = LagMeter(consumer, self._tracker, self.metrics)
        self._reassignment = Reassignment(
            consumer, self._tracker, self._pending, self._dead_lettering, self._lag, self.metrics
        )
        self._delivery = DeliveryRounds(
            deliver,
            self._pending,
            self._tracker,
            self._reassignment,
            self._dead_lettering,
            self._outcomes,
            self.metrics,
            poll_paused=self._wait,
            shutdown=self._shutdown,
            stop_requested=self._stop_requested,
            retry_policy=retry_policy or RetryPolicy(),
            clock=clock,
        )
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
        self._consumer.subscribe([self._topic], listener=self._reassignment.listener())
        checked_at = self._clock()
        try:
            while not self._stop_requested.is_set():
                self._pause_while_backlogged()
                self._poll(self._poll_timeout())
                self._delivery.deliver_due()
                self._dead_lettering.settle()
                # Under on_poison = "stop" the record to stop at requested the stop when it was
                # found (see DeadLettering): the loop ends as after a SIGTERM, delivering and
                # committing what was read before the record within the shutdown deadline, and
                # only then raises: a skip past the record must not lose the records before it.
                if not self._stop_requested.is_set():
                    # Once a stop is requested _shut_down commits (and reports after it): one
                    # commit, within the deadline, rather than one here and one there.
                    self._commits.commit()
                    self._outcomes.report()
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
            self._outcomes.report()
            raise
        except ForwarderError:
            self._commits.commit()
            self._outcomes.report()
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
        rewound = self._reassignment.apply_changes()
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
            if progress.done_before(raw.offset):
                continue  # delivered or dead-lettered before the partition was read again
            decoded = decode(topic, number, raw.offset, raw.value, raw.headers, self._validate)
            if isinstance(decoded, Poison):
                self.metrics.poison += 1
                dead_lettering.send(
                    progress,
                    raw,
                    DECODE_STAGE,
                    decoded.reason,
                    field=decoded.field,
                    outcome=self._outcomes.of_poison(decoded),
                )
                if dead_lettering.stopped_at(partition) is not None:
                    # on_poison = "stop": what follows the record on its partition stays
                    # unread, so it is neither delivered now nor delivered again after a skip.
                    break
            else:
                self._pending.add(PendingRecord(progress, raw.offset, decoded, raw), now)

    def _wait(self, seconds: float, *, until_disowned: bool = False) -> None:
        """Sleep ``seconds`` while polling with every partition paused (how a delivery round
        waits, between rounds and, through ``DeliveryWait``, between retries and while a
        request is out).

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
            if until_disowned and self._reassignment.disowned:
                return  # the delivery stops retrying (see DeliveryWait)
            # Re-pause on every turn: a rebalance may have assigned new partitions.
            consumer.pause(*consumer.assignment())
            self._poll(min(end - now, POLL_INTERVAL))
            # A wait may last most of the retry budget: the lag and the progress line keep
            # moving meanwhile (rate-limited as in the main loop).
            self._observe(self._clock())

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
        self._outcomes.report()
        while len(self._pending) and not self._shutdown.passed():
            self._delivery.deliver_due(everything=True)
        self._dead_lettering.settle()
        if answered:
            # A broker that did not answer the first commit in the time left will not answer
            # this one either: the exit is not held for it. One that refused it (a rebalance
            # under way) may take it now, after the deliveries' polls let the rebalance end.
            self._commits.commit()
        self._outcomes.report()

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
        if len(self._pending) or self._dead_lettering.unsettled or not self._reassignment.joined:
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
