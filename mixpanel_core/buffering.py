"""Buffering, written once: the background sender, a bounded queue in front of the client.

``BackgroundSender`` puts a ``BoundedQueue`` (``bounded_queue``) in front of the ingestion
client: ``submit()`` only enqueues; one sender thread drains the queue into per-endpoint batches
(up to Mixpanel's limits, or whatever arrived within ``linger``), and reports every outcome.
Records that still fail after the retry budget, or are rejected, go to the dead-letter file.
``flush``/``close`` are bounded, a bounded ``close`` runs at interpreter exit, and after
``fork()`` the child forgets the parent's queue (the parent delivers it) and starts its own
sender on its first message. A sender dropped without ``close`` delivers what it holds, then
its thread ends. Its options are ``BufferOptions`` (``buffer_options``).

The queue holds each message's JSON, and the message itself only when something needs it
later (a reader of reports, ``/import`` credentials); a message not kept is rebuilt from its
JSON in the rare case it is needed (it failed, ``flush`` returns it). What a queued record
holds, and the helpers that group and rebuild them, are in ``sender_records``.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence

from mixpanel_core.bounded_queue import BoundedQueue, held_by_caller
from mixpanel_core.buffer_options import BufferOptions
from mixpanel_core.dead_letter import DeadLetterFile
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter, reports_for
from mixpanel_core.errors import AuthenticationError, Problem, TransportError, ValidationError
from mixpanel_core.ingestion import (
    EncodedPair,
    IngestionClient,
    Outcome,
    records_limit,
    split_encoded,
)
from mixpanel_core.messages import ENDPOINTS, Endpoint, Message
from mixpanel_core.process_exit import at_exit, exit_time_left
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.sender_records import (
    RECORD_OVERHEAD,
    Record,
    by_endpoint,
    failed_messages,
    held_bytes,
    messages_of,
    pair_data,
    rebuilt_messages,
    record_data,
    unsettled,
)
from mixpanel_core.transport import bounded, ignore_report
from mixpanel_core.weak import weakly

logger = logging.getLogger(__name__)

IDLE_RECHECK = 1.0
"""Most seconds an idle sender thread waits before it checks again that its sender exists:
the backstop for the rare wake-up the sender's finalizer could not give (``BoundedQueue.finish``
never waits for the lock)."""


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

    @property
    def dead_letters_unwritten(self) -> int:
        """Records the dead-letter file could not take (disk full...), each also reported."""
        return self._dead_letter.unwritten if self._dead_letter is not None else 0

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
        return messages_of(pending + self._queue.snapshot())

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
        return failed_by_thread + messages_of(stuck + queued)

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
        if self._queue.held_here() or held_by_caller(self._state_lock):
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
            for endpoint, pairs in by_endpoint(records)
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
                self._failed_after_abort.extend(failed_messages(unsent))
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
            rest = unsettled(batch, settled, pair_data)
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
            self._in_flight = unsettled(self._in_flight, outcomes, record_data)
            if self._abort.is_set():
                # In the same locked step as the check above: ``close`` returns these with
                # what it gives up on, and reads them only after it set ``_abandoned``.
                self._failed_after_abort.extend(failed_messages(outcomes))

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
        self._settle([self._failed(e, pairs, reason) for e, pairs in by_endpoint(records)])

    def _dropped(self, records: list[Record], reason: str) -> None:
        # Logged by the queue, which counts the drop (see ``BoundedQueue._hand_dropped``).
        if self._report is not ignore_report:
            messages = rebuilt_messages(records)
            self._report_each(reports_for(messages, DeliveryStatus.DROPPED, self.name, reason))
        if self.options.when_full == "drop_oldest":
            with self._state:
                self._state.notify_all()


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
