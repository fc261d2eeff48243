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

What the thread does with each take, and the state it shares with ``flush``/``close``, is a
``SenderLoop`` (``sender_loop``); what becomes of the outcomes (reports, dead letters, the
warning, the reports of drops) is ``SenderSettling``'s (``sender_settling``). This module keeps
the caller's side, ``flush``/``close``, fork handling, the thread's life and the exit close.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence

from mixpanel_core.bounded_queue import BoundedQueue, held_by_caller
from mixpanel_core.buffer_options import BufferOptions
from mixpanel_core.dead_letter import DeadLetterFile
from mixpanel_core.delivery import Reporter
from mixpanel_core.errors import Problem, TransportError, ValidationError
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.messages import ENDPOINTS, Endpoint, Message
from mixpanel_core.process_exit import CLOSE_FLOOR, at_exit, exit_time_left, owned
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.refusals_logged import RefusalsLogged
from mixpanel_core.sender_loop import NOT_SENT_AFTER_CLOSE, SenderLoop
from mixpanel_core.sender_records import RECORD_OVERHEAD, Record, held_bytes, messages_of
from mixpanel_core.sender_settling import SenderSettling
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
        exit_owner: object | None = None,
    ) -> None:
        self.client = client
        self.options = options or BufferOptions()
        self.name = name
        self._observed = report is not ignore_report if observed is None else observed
        """Whether anyone reads reports of accepted records (and so wants their messages): read
        here by ``submit`` itself, which keeps their messages, and by the settling."""
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
        dead_letter = DeadLetterFile(path, key) if path is not None else None
        self._settling = SenderSettling(name, report, self._observed, dead_letter)
        self._closed = False
        self._close_ended = threading.Event()
        """Set once a ``close`` ended, done or interrupted (``_close_interrupted``)."""
        self._close_interrupted = False
        """A ``close`` was interrupted after its flush, with what is left not given up on
        yet: the exit close finishes it (``close_at_exit``)."""
        self._cancel_exit_close: Callable[[], None] | None = None
        """Set when the thread first starts: a sender that never took a record has nothing to
        deliver at exit, and leaves no exit hook behind when it is dropped."""
        self._exit_owner = weakref.ref(self if exit_owner is None else exit_owner)
        """The transport whose exit close this sender's is (``process_exit.owned``), so that
        the transports feeding it close before it at exit; weakly, as the hook holds it."""
        self._reset_sender()
        in_fork_children(self, BackgroundSender._after_fork)
        # Freed means idle (the queue keeps a sender with records alive): the thread may end.
        # At exit the bounded close does the work, so the finalizer does not run then.
        weakref.finalize(self, self._queue.finish).atexit = False

    def _reset_sender(self) -> None:
        # A loop of this process: fresh locks, nothing taken or in flight.
        self._loop = SenderLoop(
            self._queue, self.client, self.options, self._settling, self._batch_records, self.name
        )
        self._thread: threading.Thread | None = None
        self._thread_ended = threading.Event()
        """Set by the thread as it ends: ``close`` waits on it (see ``_stop``)."""
        self._start_lock = threading.Lock()
        self._stuck: list[Record] = []
        """The records of a request still out when ``close`` gave up on it, not settled yet."""
        self._not_started: list[Record] = []
        """The records of that take's later requests, never sent, not settled yet."""
        self._give_up_lock = threading.Lock()

    def _after_fork(self) -> None:
        # The parent still holds and will deliver what was queued before the fork; the child
        # starts empty, with fresh locks, and starts its own thread on its first message.
        self._queue.reset_after_fork()
        self._reset_sender()
        # A close another thread of the parent's was in is run by no thread here: interrupted.
        ended = self._close_ended.is_set()
        self._close_ended = threading.Event()
        if self._closed and not ended:
            self._close_interrupted = True
        if ended or self._close_interrupted:
            self._close_ended.set()
        dead_letter = self._settling.dead_letter
        if dead_letter is not None:
            dead_letter.reset_after_fork()

    # -- the caller's side ----------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Messages dropped by the full policy so far (each was also reported DROPPED)."""
        return self._queue.total_dropped

    @property
    def dead_letters_unwritten(self) -> int:
        """Records the dead-letter file could not take (disk full...), each also reported."""
        dead_letter = self._settling.dead_letter
        return dead_letter.unwritten if dead_letter is not None else 0

    def __len__(self) -> int:
        """Messages queued or being sent (not those a close gave up on while being sent)."""
        loop = self._loop
        return len(self._queue) + (0 if loop.abandoned else len(loop.in_flight))

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
                    owner = self._exit_owner()
                    self._cancel_exit_close = at_exit(
                        owned(self if owner is None else owner, lambda: _close_at_exit(me))
                    )
                ended = self._thread_ended  # fresh with this sender, or since the fork
                thread = threading.Thread(
                    target=_send_while_owned,
                    args=(
                        weakref.ref(self),
                        self._queue,
                        self.client,
                        self._loop.refusals_logged,
                        self._cancel_exit_close,
                        ended,
                    ),
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
        loop = self._loop
        with loop.state:
            loop.urgent += 1
        self._queue.wake()
        try:
            with loop.state:
                while not loop.settled_up_to(target):
                    left = deadline - time.monotonic()
                    if left <= 0 or self._thread is None or loop.abandoned:
                        break
                    loop.state.wait(left)
                else:
                    return []
                # What a close gave up on while its request was out is no longer held: that
                # close reported and returned it, and the thread will not report it again.
                pending = [] if loop.abandoned else list(loop.in_flight)
                unsettled = loop.answered_unsettled(target)
        finally:
            with loop.state:
                loop.urgent -= 1
        if unsettled:
            # Not returned (they are not held, and sending them again would duplicate them),
            # and not settled either: said, or a flush that returned [] would claim it.
            logger.warning(
                "%s: flush ran out of time while up to %d records Mixpanel answered had their "
                "delivery reports (and dead letters) still to be made, by a sender thread held "
                "up (a slow mixpanel_delivered observer?); they are made later, or never if "
                "the process ends first",
                self.name,
                unsettled,
            )
        return messages_of(pending + self._queue.snapshot())

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
        loop = self._loop
        with loop.state:
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
            # the exit close to do. Left closed, the exit close returned at once, and what
            # was queued vanished with no report, dead letter or log line.
            with loop.state:
                self._closed = False
            raise
        try:
            return self._stop(started + bound, abort=bool(left))
        except BaseException:
            # Interrupted past its flush (a SIGTERM while it reports what it gives up on):
            # left for the exit close to finish (see ``close_at_exit``).
            self._close_interrupted = True
            raise
        finally:
            self._close_ended.set()

    def close_at_exit(self, bound: float) -> None:
        """The exit close: ``close(bound)``, or the end of a ``close`` that did not end.

        One of the application's is under way on a daemon thread, which the interpreter
        stops once the exit clean-ups are over, or was interrupted past its flush (see
        ``close``): it is waited for within ``bound``, then finished here. What it left is
        given up on (reported FAILED, dead-lettered, logged) rather than lost with it.
        """
        if not self._closed:
            self.close(bound)
            return
        deadline = time.monotonic() + bound
        ended = not self._close_interrupted and self._close_ended.wait(bound)
        if ended and not self._close_interrupted:
            return  # it ended within the bound, and gave up on what it did not deliver
        self._stop(deadline, abort=True)

    def _stop(self, deadline: float, *, abort: bool) -> list[Message]:
        """The end of ``close``: stop the thread by ``deadline`` (``abort``: in a retry wait
        or between requests too) and give up on what is left; returns what it gave up on.

        Safe to run again, also from another thread while one runs (the exit close finishing
        one that did not end): each record left is given up on by one of them only, a chunk
        at a time (see ``_give_up_the_rest``).
        """
        loop = self._loop
        self._queue.finish()
        if abort:
            loop.abort.set()
        self._queue.wake()
        thread = self._thread
        if thread is not None:
            # Waited for on an Event the thread sets as it ends, not with join(): on Python
            # 3.11 a join that a signal interrupts marks the thread ended while it still runs,
            # and the exit close then left the batch of its request out, unreported.
            ended = self._thread_ended
            if ended.wait(max(0.0, deadline - time.monotonic()) + 0.05):
                # Its work is over; this waits out only its last steps, so that close()
                # returns with the thread gone (an interrupted join is harmless here).
                thread.join(1.0)
            if not ended.is_set() and loop.in_retry_wait:
                # Stopped in a retry wait, it has no request out: it is settling that call,
                # which on a loaded machine can take more than 50 ms. Given up on meanwhile,
                # the batch it no longer retries would be reported "during the request", not
                # with Mixpanel's last answer. Until that step only, not the thread's end:
                # its reports (a slow report callback) are not close's to wait for.
                loop.stopped_call_settled.wait(_SETTLING_GRACE)
            if not ended.is_set():
                with loop.state:
                    out, not_started = loop.abandon()
                    self._stuck.extend(out)
                    self._not_started.extend(not_started)
        given_up = self._give_up_the_rest()
        loop.refusals_logged.say_unsaid()
        if self._cancel_exit_close is not None:
            self._cancel_exit_close()
        self.client.close()
        # Not ``left``: the thread may have settled some of those since (Mixpanel accepted
        # them: a caller resending them would apply a profile $add twice). Read after
        # ``abandoned`` is set, after which the thread adds none.
        with loop.state:
            failed_by_thread = list(loop.failed_after_abort)
        return failed_by_thread + messages_of(given_up)

    def _give_up_the_rest(self) -> list[Record]:
        """Give up on the records of the request still out (``_stuck``), then on those still
        queued: a chunk at a time, each taken from where it waits only as it is settled;
        returns them.

        A signal's ``SystemExit`` or a Ctrl-C raised here (a ``close`` on the main thread)
        leaves the rest where the exit close's ``_stop`` finds them. Taking them all first
        lost them all (99,950 of 100,000 records, in a review): now it is at most part of
        one chunk's dead letters, as report callbacks finish their chunk first.
        """
        given_up: list[Record] = []
        for held, reason, out in (
            (self._stuck, _IN_FLIGHT_GIVEN_UP, True),
            (self._not_started, NOT_SENT_AFTER_CLOSE, False),
        ):
            with self._give_up_lock:
                count = len(held)
            self._settling.warn_given_up(count, reason)
            while True:
                with self._give_up_lock:
                    chunk = held[:_GIVE_UP_CHUNK]
                    del held[:_GIVE_UP_CHUNK]
                if not chunk:
                    break
                given_up += chunk
                self._settling.give_up(chunk, reason, warn=False, maybe_applied=out)
        self._settling.warn_given_up(len(self._queue), _QUEUED_GIVEN_UP)
        while chunk := self._queue.take(_GIVE_UP_CHUNK):
            given_up += chunk
            self._settling.give_up(chunk, _QUEUED_GIVEN_UP, warn=False)
        return given_up

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
        if self._queue.held_here() or held_by_caller(self._loop.state_lock):
            raise TransportError(
                f"{self.name}: {verb}() was called while this thread is inside the transport "
                "(from a signal handler that interrupted send() or flush()?), which would wait "
                "for itself forever; from a signal handler, raise SystemExit (call sys.exit()) "
                "instead: the exit close then runs once the interrupted call has let go"
            )

    def _dropped(self, records: list[Record], reason: str) -> None:
        # Logged by the queue, which counts the drop (see ``BoundedQueue._hand_dropped``).
        settling = self._settling
        if settling.report is not ignore_report:
            settling.dropped(records, reason)
        if self.options.when_full == "drop_oldest":
            state = self._loop.state
            with state:
                state.notify_all()


def _send_while_owned(
    ref: weakref.ref[BackgroundSender],
    queue: BoundedQueue[Record],
    client: IngestionClient,
    refusals: RefusalsLogged,
    cancel_exit_close: Callable[[], None] | None,
    ended: threading.Event,
) -> None:
    """The sender thread: deliver what is queued until ``close``, or until the sender is freed;
    ``ended`` is set as it ends, however it ends.

    It holds its sender only while it has something to deliver. Waiting, it holds the queue,
    the client and a weak reference: a running thread is never collected, so one that held
    its sender would keep every sender dropped without ``close`` (and its connections)
    forever. A sender dropped with records queued lives on, kept by its queue, until they are
    delivered, retried, reported and dead-lettered as usual; freed, its finalizer only
    ``finish``es the queue (it may run on any thread, inside any lock), and this thread then
    closes the connections and cancels the exit hook.
    """
    try:
        while True:
            # Only records or the end wake it: a flush with nothing queued has nothing to
            # wait for (it returns at once), and waking for it spun this loop on an empty
            # queue, holding the interpreter, until the flush noticed.
            queue.wait_not_empty(IDLE_RECHECK)
            sender = ref()
            if sender is None:
                break
            if (len(queue) or queue.finished) and not sender._loop.send_next():
                return  # closed: ``close`` releases the rest
            del sender  # idle again: waiting must not keep the sender alive
        if cancel_exit_close is not None:
            cancel_exit_close()
        refusals.say_unsaid()  # as ``close`` does: the lines add up to every record refused
        client.close()
    finally:
        ended.set()


_IN_FLIGHT_GIVEN_UP = "not delivered: close() timed out during the request"
_QUEUED_GIVEN_UP = "not delivered: close() timed out"
_GIVE_UP_CHUNK = 500
"""Records ``close`` takes, then settles, at a time when it gives up (see ``_give_up_the_rest``)."""


def _close_at_exit(ref: weakref.ref[BackgroundSender]) -> None:
    sender = ref()
    if sender is not None:
        # Counted from the start of exit, not from this close: the senders close one after
        # another, and the exit must end within the largest exit_timeout, not their sum. But
        # never less than a short floor: a sender whose close comes after a stalled one's may
        # have records queued during exit (by an atexit handler of the application's) that
        # take it milliseconds to deliver, not worth losing for no time saved.
        bound = sender.options.exit_timeout
        sender.close_at_exit(max(exit_time_left(bound), min(bound, CLOSE_FLOOR)))
