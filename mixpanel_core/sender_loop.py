"""What each turn of a ``BackgroundSender``'s thread does, and the state it shares with ``flush``.

Each turn (``SenderLoop.send_next``; the loop around it is ``buffering._send_while_owned``)
lingers for a fuller batch, takes it from the queue, cuts it into requests, sends each and
settles it. What the thread shares with ``flush`` and ``close`` about the take is kept here,
under one condition.

A ``SenderLoop`` lives as long as its sender, and one process: after ``fork()`` the child's
sender builds a new one (fresh locks, nothing in flight). It holds no reference to its sender:
the sender thread holds the sender while it delivers a take (see ``buffering``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from mixpanel_core.bounded_queue import BoundedQueue
from mixpanel_core.buffer_options import BufferOptions
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion import (
    EncodedPair,
    IngestionClient,
    Outcome,
    records_limit,
    split_encoded,
)
from mixpanel_core.ingestion.outcomes import stopped_by_refusal
from mixpanel_core.messages import Endpoint, Message
from mixpanel_core.refusals_logged import RefusalsLogged
from mixpanel_core.sender_records import (
    Record,
    apart,
    by_endpoint,
    failed_messages,
    pair_data,
    record_data,
    unsettled,
)
from mixpanel_core.sender_settling import SenderSettling

# The logger these lines had while they were written in ``buffering``: a deployment that routes
# or silences ``mixpanel_core.buffering`` still sees (or hides) them all.
logger = logging.getLogger("mixpanel_core.buffering")

NOT_SENT_AFTER_CLOSE = "not sent: close() timed out first"

HOLD_CHECKED_EVERY = 0.1
"""Seconds between two looks at the queue while a ``Retry-After`` holds the sender (see
``_wait_out_retry_after``)."""


class SenderLoop:
    """Delivers the takes of ``queue`` through ``client``, settling them with ``settling``.

    Its public attributes are what ``flush`` and ``close`` read and change, under ``state``.
    """

    def __init__(
        self,
        queue: BoundedQueue[Record],
        client: IngestionClient,
        options: BufferOptions,
        settling: SenderSettling,
        batch_records: int,
        name: str,
    ) -> None:
        self._queue = queue
        self._client = client
        self._options = options
        self._settling = settling
        self._batch_records = batch_records
        self._name = name
        # Reentrant only so that its owner can be asked, as the queue's lock (``flush``).
        self.state_lock = threading.RLock()
        self.state = threading.Condition(self.state_lock)
        self.take_from: int | None = None
        """``BoundedQueue.removed`` just before the take being delivered (the sequence number
        of its first record, or less), ``None`` between takes: what ``flush`` waits for."""
        self.in_flight: list[Record] = []
        self.take_size = 0
        """How many records the take being delivered holds (see ``answered_unsettled``)."""
        self.settled_in_take = 0
        """How many of them are settled: their requests answered, and reported."""
        self.not_started: list[Record] = []
        """The records of the take's requests not started yet (the whole take until its first
        request starts): a ``close`` that gives up on them says they were not sent."""
        self.urgent = 0
        self.abandoned = False
        self.abort = threading.Event()
        self.in_retry_wait = False
        """Whether the thread is in a retry wait, or on its way out of one ``close`` cut short
        (then until the thread ends): it has no request out (see ``close``)."""
        self.refusals_logged = RefusalsLogged(name)
        """The lines of the refusals of credentials (also said by the thread of a sender
        freed without ``close``)."""
        self._refusal: AuthenticationError | None = None
        """The refusal of credentials that ended the request being sent, if it was refused."""
        self.hold_until = 0.0
        """``time.monotonic()`` before which no request is sent: the last ``Retry-After``
        Mixpanel gave outlasted a request's retry budget (see ``_hold_for_retry_after``)."""
        self.stopped_call_settled = threading.Event()
        """Set once the thread settled the call it was in when ``close`` gave up waiting for
        it (and the rest of that take): nothing of it is in flight any more."""
        self._settled_in_call: list[Outcome] = []
        """What the client announced settled in the request being sent (see ``_settled_now``),
        up to the moment ``close`` abandons the thread."""
        self.failed_after_abort: list[Message] = []
        """The messages this thread settled FAILED once ``close`` gave up waiting for it, up to
        the moment it abandons the thread: ``close`` returns them with the ones it gives up on
        itself."""

    def ready(self) -> bool:
        """Whether to send what is queued now, without lingering for a full batch."""
        return self.urgent > 0 or self._queue.finished

    def settled_up_to(self, target: int) -> bool:
        """Whether every record put before the ``target``-th is settled or dropped (``state``
        held): none is queued, and none is in the take being delivered.

        Positions, not counts: under ``drop_oldest`` the records put after ``flush`` started
        are evicted too, and counting them made ``flush`` return while earlier records were
        still in flight.
        """
        if self._queue.removed < target:
            return False
        return self.take_from is None or self.take_from >= target

    def answered_unsettled(self, target: int) -> int:
        """Records put before the ``target``-th that Mixpanel answered, and whose outcomes
        (their reports, dead letters) the thread has still to settle (``state`` held): a
        ``flush`` that runs out of time does not return them, since they are no longer held,
        but they are not settled yet either (a slow ``mixpanel_delivered`` observer)."""
        if self.take_from is None or self.take_from >= target or self.abandoned:
            return 0
        return self.take_size - len(self.in_flight) - self.settled_in_take

    def send_next(self) -> bool:
        """Linger for a fuller batch, take it and deliver it; ``False`` once the thread is to end
        (``close`` ran out of time, or it finished and nothing is left)."""
        queue = self._queue
        if self.abort.is_set() or (queue.finished and not len(queue)):
            return False
        linger = self._options.linger
        if linger and not self.ready():
            queue.wait_until(self.ready, linger)
        with self.state:
            # Taken and published as in flight in one step: ``close`` gives up on what is
            # queued and what is in flight, and must never see a take between the two. An
            # eviction between reading ``removed`` and the take only makes ``take_from``
            # smaller: ``flush`` then waits for this take too, never too little.
            self.take_from = queue.removed
            items = queue.take(self._batch_records)
            self.in_flight = self.not_started = items
            self.take_size = len(items)
            self.settled_in_take = 0
        try:
            self._deliver(items)
        except Exception as error:
            # The thread must outlive any bug: everything queued after this take would
            # otherwise never be sent. Requests are settled one by one in ``_send``, so an
            # error here came before any request (cutting the batches): none was sent.
            logger.exception("%s: unexpected error while preparing requests", self._name)
            self._settling.give_up(items, f"not sent: {type(error).__name__}: {error}")
        finally:
            with self.state:
                self.in_flight = self.not_started = []
                self.take_from = None
                self.state.notify_all()
        return not self.abort.is_set()

    def _deliver(self, records: list[Record]) -> None:
        # Each batch is one request (and one retry budget, as the option says); the client
        # finds it within the limits with a single sum and sends it as it is. All are cut
        # before the first is sent, so a failure while cutting them leaves none half-sent.
        max_bytes = self._client.options.max_batch_bytes
        requests = [
            (endpoint, batch)
            for endpoint, pairs in by_endpoint(records)
            for batch in split_encoded(
                pairs,
                self._client.wire_format(endpoint),
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
        with self.state:
            self.not_started = [(e, m, d) for e, pairs in rest for m, d in pairs] if rest else []
        self._wait_out_retry_after()
        outcomes, reports = self._request(endpoint, batch)
        self._hold_for_retry_after([*outcomes, *(reports or ())])
        unsent: list[Outcome] = []
        # Decided in the locked step, not after the reports: a ``close`` giving up after that
        # step finds the later requests in flight, and the next ``_send`` settles them.
        going_on = False
        with self.state:
            announced, self._settled_in_call = self._settled_in_call, []
            if self.abandoned:
                # close() gave up on what was still in flight then, and reported it. What was
                # settled before (a first half of a split Mixpanel accepted) is not in its list:
                # reported here, as it was settled, and nothing else.
                outcomes, reports = announced, None
            elif self.abort.is_set():
                # close() ran out of time: it gives up on what is left (reports it FAILED,
                # dead-letters it, returns it), so starting a later request now would deliver
                # records that a replay of the dead letters sends again. Settled in this step,
                # which ends close's wait for it (see close): nothing of the take is left.
                failed = self._settling.failed
                unsent = [failed(e, pairs, NOT_SENT_AFTER_CLOSE) for e, pairs in rest]
                self.failed_after_abort.extend(failed_messages(unsent))
                self.in_flight = []
                self.stopped_call_settled.set()
            else:
                # The client announced this request's records settled as it settled them, so
                # they are out of what is in flight already (see ``_settled_now``); this only
                # makes sure of it. Rebuilt only for a take of several requests.
                self.in_flight = [(e, m, d) for e, pairs in rest for m, d in pairs] if rest else []
                going_on = True
        refusal, self._refusal = self._refusal, None
        if reports is None:
            self._settling.settle(outcomes)
        else:
            # A refusal of credentials: its ERROR line says why, and how many records (see
            # ``RefusalsLogged``); the call's other records not delivered get their own line.
            # (Not when ``close`` abandoned the call meanwhile: it said what it gave up on.)
            if refusal is not None:
                count = sum(map(stopped_by_refusal, reports))
                self.refusals_logged.refused(endpoint, refusal, count)
            self._settling.settle_reports(reports, warn=False)
            others = [r for r in reports if not r.ok and not stopped_by_refusal(r)]
            if others:
                self._settling.warn_given_up(len(others), others[0].reason or "")
        if unsent:
            self._settling.settle(unsent)
        with self.state:
            self.settled_in_take += len(batch)  # reported: no longer owed (a flush's warning)
        return going_on

    def _hold_for_retry_after(self, ended: Sequence[Outcome | DeliveryReport]) -> None:
        """Hold the requests after this one for as long as a ``Retry-After`` of a request
        given up on asked (``ended``: the outcomes, or the reports, of the call).

        The request itself was given up on (its wait would outlast its retry budget, or the
        budget ran out), but sending the next one at once, as if Mixpanel had not asked, would
        write off every request of the incident the same way (into the dead-letter file, a
        line of log each) and prolong a rate limit: until then what is sent waits in the
        queue, as long as there is room (see ``_wait_out_retry_after``).
        """
        if self.abort.is_set():
            return  # close gave up on the call: nothing is sent after it anyway
        asked = max(
            (e.retry_after or 0.0 for e in ended if e.status is DeliveryStatus.FAILED),
            default=0.0,
        )
        now = time.monotonic()
        if asked > 0 and now + asked > self.hold_until:
            holding, self.hold_until = self.hold_until > now, now + asked
            if holding:
                return  # said when it began (a request that went out to make room)
            logger.warning(
                "%s: Mixpanel asked to wait %.1fs (Retry-After) before sending again; until "
                "then what is sent waits in the queue while it has room (less than half "
                "full) and nothing flushes or closes the transport",
                self._name,
                asked,
            )

    def _wait_out_retry_after(self) -> None:
        """Wait until ``hold_until``, or until there is reason to send at once: the queue is
        half full, or a ``flush`` or ``close`` waits for the sender (``ready``). A ``close``
        that runs out of time (``abort``) then gives up on this request as not sent (see
        ``_request``).

        Held while the queue filled (``Retry-After`` is taken up to an hour), ``when_full``
        dropped what was sent (reported, not dead-lettered) or held each caller for
        ``block_timeout``, and a flush waited out its whole timeout. Half the queue is kept
        free for bursts, and a put that finds no room (a record larger than that half) ends
        the wait at once: then each request goes out as it did before, most likely given up
        on again, into the dead-letter file.
        """
        queue = self._queue
        while True:
            left = self.hold_until - time.monotonic()
            if left <= 0 or self._give_way():
                return
            self.in_retry_wait = True  # no request out: as in a retry wait (see ``_wait``)
            queue.wait_while(self._holding, min(left, HOLD_CHECKED_EVERY))
            if self.abort.is_set():
                return  # as ``_wait``, it stays in its wait on its way out
            self.in_retry_wait = False

    def _holding(self) -> bool:
        return not (self.abort.is_set() or self._give_way())

    def _give_way(self) -> bool:
        """Whether a hold gives way: a flush or close waits, or the queue is half full or
        found no room for a put (checked under the queue's lock, or with a look of its own)."""
        queue = self._queue
        return (
            self.ready()
            or queue.room_wanted
            or len(queue) * 2 >= queue.max_items
            or queue.bytes * 2 >= queue.max_bytes
        )

    def abandon(self) -> tuple[list[Record], list[Record]]:
        """Mark the thread abandoned by ``close`` (``state`` held), unless it was; returns what
        is in flight then: the records of the request out, and those of the take's requests
        not started, which were never sent."""
        if self.abandoned:
            return [], []
        self.abandoned = True
        return apart(self.in_flight, self.not_started)

    def _request(
        self, endpoint: Endpoint, batch: list[EncodedPair]
    ) -> tuple[Sequence[Outcome], Sequence[DeliveryReport] | None]:
        """The outcomes of one request, or the reports of a refusal of its credentials.

        Every record of it is announced settled (``_settled_now``) once, as it is settled: by
        the client for what it sends, here for what never reaches the client.
        """
        if self.abort.is_set():
            # close() ran out of time: it gives up on what is left (reports it FAILED,
            # dead-letters it, returns it), so starting this request now would deliver
            # records that a replay of the dead letters sends again.
            unsent = [self._settling.failed(endpoint, batch, NOT_SENT_AFTER_CLOSE)]
            self._settled_now(unsent)
            return unsent, None
        try:
            # ``stop``: once close gave up, not even a half of a split starts (those start
            # without a wait, so ``_wait`` alone let them go out after close returned).
            result = self._client.send_encoded(
                endpoint, batch, self._wait, on_settled=self._settled_now, stop=self.abort.is_set
            )
        except AuthenticationError as error:
            self._refusal = error  # logged by ``_send``, with the reports it settles
            return (), error.reports
        except Exception as error:
            # The sender must outlive any bug or surprise: the records the call had not
            # settled are reported FAILED, not lost; those it had keep their outcomes.
            logger.exception("%s: unexpected error while sending to /%s", self._name, endpoint)
            with self.state:
                settled = list(self._settled_in_call)
            rest = unsettled(batch, settled, pair_data)
            if not rest:
                return settled, None
            reason = f"{type(error).__name__}: {error}"
            failed = [self._settling.failed(endpoint, rest, reason)]
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
        with self.state:
            if self.abandoned:
                return
            self._settled_in_call.extend(outcomes)
            self.in_flight = unsettled(self.in_flight, outcomes, record_data)
            if self.abort.is_set():
                # In the same locked step as the check above: ``close`` returns these with
                # what it gives up on, and reads them only after it set ``abandoned``.
                self.failed_after_abort.extend(failed_messages(outcomes))

    def _wait(self, seconds: float) -> bool:
        """The client's wait before a retry; ``False``, which stops the client's call, once
        ``close`` ran out of time. Returning rather than raising lets the call keep what it
        settled before (a first half of a split Mixpanel accepted stays ACCEPTED)."""
        self.in_retry_wait = True
        if self.abort.wait(seconds):
            return False  # still no request out: close may wait for this call to settle
        self.in_retry_wait = False
        return True
