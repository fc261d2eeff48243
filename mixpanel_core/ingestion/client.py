"""``IngestionClient``: sends batches to Mixpanel's ingestion API and says what became of each.

The one place that encodes, authenticates, compresses, posts, classifies and retries. Both
HTTP transports and the forwarder deliver through it. The retry loop is ours (not urllib3's)
because it must classify each record, split on 413 (and on a ``/track`` ``status: 0`` that does
not say which records were refused), respect a time budget and a deadline that may move, and do
all of its waiting through the caller's ``wait`` function, which may also stop the call. It
tells the caller which records are settled as it goes (``on_settled``), not only at the end.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import itertools
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import attrs

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion.auth import (
    ImportCredentials,
    configured_credentials,
    credentials_for,
)
from mixpanel_core.ingestion.batching import records_limit, split_encoded
from mixpanel_core.ingestion.classify import (
    Classification,
    Verdict,
    classify_response,
    network_failure,
    proxy_refusal,
)
from mixpanel_core.ingestion.encoding import (
    Encoded,
    EncodedPair,
    WireFormat,
    message_in,
    wire_format,
)
from mixpanel_core.ingestion.endpoints import endpoint_urls, shown_url
from mixpanel_core.ingestion.http import (
    HttpSession,
    NetworkError,
    ProxyAuthError,
    RequestError,
    Response,
    TlsError,
)
from mixpanel_core.ingestion.options import HttpOptions
from mixpanel_core.ingestion.request_watch import request_ceiling
from mixpanel_core.ingestion.result import BatchResult, Outcome
from mixpanel_core.messages import ENDPOINTS, Endpoint, Message
from mixpanel_core.settings import MixpanelSettings

Wait = Callable[[float], bool | None]
"""Sleeps for the given seconds before a retry; the forwarder passes one that keeps polling
Kafka meanwhile. ``False`` says the wait was cut short and the call is to stop: the request
waiting to be retried is reported FAILED, no other request of the call starts, and what was
settled before keeps its outcome. Anything else (``None``, what ``time.sleep`` returns) goes on.
"""


@runtime_checkable
class WaitWhileOut(Protocol):
    """A ``Wait`` that is also kept busy while a request is out, instead of the client
    sleeping on its answer (the forwarder's, which keeps polling Kafka so its consumer group
    can rebalance meanwhile): see ``IngestionClient._post_watched``."""

    def __call__(self, seconds: float) -> bool | None: ...

    def while_request_out(self, seconds: float) -> None:
        """Called for ``WATCH_INTERVAL`` at a time while the request is out; what it returns
        is ignored (the request is out: only the deadline abandons it)."""

    def request_answered(self, answer: Response | BaseException) -> None:
        """The ``Response``, or the exception, that ended the request."""


Settled = Callable[[Sequence[Outcome]], None]
"""Told, on the calling thread, the outcomes of records as the call settles them: records it
will not send again (accepted, rejected, failed, or not sent at all). Every record of the call
is in exactly one announcement, made once its fate is known, with the status it has in what
the call returns or raises; a buffered sender learns this way, while a call still runs, which
of its records Mixpanel already answered. It must not raise.
"""

Deadline = float | Callable[[], float | None] | None
"""When a send must end, on the ``time.monotonic()`` clock: a fixed value, or a function that
says the deadline now (``None``: none yet), for a deadline that may be set or brought forward
while a request is out (the forwarder's, which SIGTERM starts)."""

WATCH_INTERVAL = 0.05
"""How often a request under a movable deadline checks whether that deadline has passed."""

LEAST_ATTEMPT = 1.0
"""Seconds of the retry budget a retry needs left to be sent at all (less when a quarter of
the budget, or the timeouts' ceiling, is less): one sent with less is cut off after Mixpanel
may have applied it."""

WHOLLY_REFUSED = 16
"""Records in a first half, every one refused by a ``status: 0``, that stop the second half
from being narrowed down (see ``_halves``): so many refused together by chance is unlikely,
a batch refused whole (a wrong token, events too old) is what it usually means."""


class _AbandonedError(Exception):
    """Internal: a request still unanswered when the call's deadline passed."""


class _CredentialsRefusedError(Exception):
    """Internal: a 401/403 (or a proxy's 407) ended the request; carries what the error
    message needs, and what was settled before it in the batch being delivered."""

    def __init__(self, answer: Classification, attempts: int, batch: Sequence[EncodedPair]) -> None:
        super().__init__(answer.reason)
        self.answer = answer
        self.attempts = attempts
        self.batch = batch
        """The records of the refused request."""
        self.settled: list[Outcome] = []
        """The outcomes of the records before ``batch`` (halves of a split already sent,
        each announced when it was settled); each split level it passes through on its way
        up adds those of its first half."""

    @property
    def not_sent(self) -> str:
        """The reason of the records that were not sent because of this refusal."""
        return _PROXY_REFUSED_EARLIER if self.answer.proxy_refused else _REFUSED_EARLIER


@attrs.frozen
class _Split:
    """Internal: the batch is to be sent again in halves (413, a body over the byte budget, a
    ``status: 0`` to narrow down), each counting the ``attempts`` made so far."""

    attempts: int
    started: float | None
    """When the retry budget of the batch started (its first attempt; ``None``: it was split
    before any): its halves share it."""
    unnamed: Classification | None = None
    """The ``status: 0`` whose refused records the split looks for, also when a half of it is
    split again (a 413, the byte budget): its halves are sent as its retries are, within its
    budget. ``None``: a request split on a 413 or the byte budget, whose halves are requests
    of their own."""


class _Call:
    """What one ``send_batch`` call shares between its requests: the retry policy, the
    deadline, whether the caller's ``wait`` stopped it, and whom to tell what it settles.

    The retry budget is not the call's: each request's starts at its own first attempt
    (``started``, passed along; the halves of a split share their batch's), so a request
    sent late in a long call gets the same budget as the first one."""

    def __init__(
        self,
        client: IngestionClient,
        wait: Wait,
        deadline: Deadline,
        on_settled: Settled | None = None,
    ) -> None:
        self.policy = client.options.retry_policy
        self._wait = wait
        self._deadline = deadline
        self._on_settled = on_settled
        self.movable = callable(deadline)
        """Whether the deadline may change while a request is out (see ``Deadline``)."""
        self.stopped = False
        """Whether a wait was cut short (see ``Wait``): no request of the call starts since."""
        self.too_large: int | None = None
        """The size of the smallest body a 413 refused among the halves of the request being
        delivered: a body of several records as large is split without being sent. A
        server whose limit is below a record cost a request of n records 2n - 1 requests; now
        about n. Forgotten at the next request of the call: a stray 413 (a proxy's, a fault)
        splits only its own request."""

    @property
    def deadline(self) -> float | None:
        """The deadline as it stands now."""
        deadline = self._deadline
        return deadline() if callable(deadline) else deadline

    def remaining(self, started: float) -> float:
        """Seconds left to retry in: within the retry budget of the request whose first
        attempt was at ``started``, and before the deadline."""
        return self.policy.remaining(started, time.monotonic(), self.deadline)

    def budget_left(self, started: float) -> float:
        """Seconds left of the retry budget started at ``started``, whatever the deadline."""
        return self.policy.remaining(started, time.monotonic())

    def past_deadline(self) -> bool:
        deadline = self.deadline
        return deadline is not None and time.monotonic() >= deadline

    def wait(self, seconds: float) -> bool:
        """The caller's wait; ``False`` once it was cut short, which stops the call."""
        if self._wait(seconds) is False:
            self.stopped = True
        return not self.stopped

    def settle(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Announce ``outcomes`` (see ``Settled``), then return them. Called once per set of
        outcomes, where it is made, never where halves or groups are put back together."""
        if self._on_settled is not None and outcomes:
            self._on_settled(outcomes)
        return outcomes

    def why_not_send(self) -> str | None:
        """Why no request may start now (the call was stopped, or its deadline passed), if so."""
        if self.stopped:
            return _STOPPED
        if self.past_deadline():
            return _PAST_DEADLINE
        return None


class IngestionClient:
    """Delivers batches of messages to Mixpanel; thread-safe (one connection pool, fork-aware).

    ``send_batch`` returns a ``BatchResult`` with one report per message, in order. It raises
    ``AuthenticationError`` (carrying every report: those Mixpanel accepted before it ACCEPTED,
    the unsent ones FAILED) when Mixpanel refuses the credentials, or a proxy its own (407).
    ``name`` is the transport name written into the reports.
    """

    def __init__(
        self,
        settings: MixpanelSettings,
        options: HttpOptions | None = None,
        *,
        name: str = "http",
    ) -> None:
        self.settings = settings
        self.options = options or HttpOptions()
        self.name = name
        self.urls = endpoint_urls(settings)
        self._credentials = configured_credentials(settings)
        self._formats = {e: wire_format(e, self.options.import_format) for e in ENDPOINTS}
        self._http = HttpSession(self.options.pool_size, settings.verify_tls)
        self._least_attempt = min(
            LEAST_ATTEMPT,
            self.options.retry_budget / 4,
            request_ceiling(*self.options.timeout),
        )

    # -- encoding -------------------------------------------------------------------------

    def wire_format(self, endpoint: Endpoint) -> WireFormat:
        """How bodies for ``endpoint`` are framed (for senders that encode ahead of time)."""
        return self._formats[endpoint]

    def encode(self, endpoint: Endpoint, messages: Sequence[Message]) -> list[Encoded]:
        """Each message's record as it will appear in a body to ``endpoint``."""
        return self._formats[endpoint].encode_messages(messages)

    # -- sending --------------------------------------------------------------------------

    def send_batch(
        self,
        endpoint: Endpoint,
        messages: Sequence[Message],
        *,
        wait: Wait = time.sleep,
        deadline: Deadline = None,
    ) -> BatchResult:
        """Deliver ``messages`` to ``endpoint``, retrying within the budget.

        Messages beyond one request's limits are sent as several requests. ``deadline`` is a
        ``time.monotonic()`` value after which no request starts and no wait begins, and that
        bounds each request's timeouts. Given as a function (see ``Deadline``), it is read
        again while a request waits for its answer: once it passes, the request is abandoned
        and its records reported FAILED (Mixpanel may still receive it, as after a timeout).
        ``wait`` does all the sleeping between attempts; returning ``False`` stops the call
        (see ``Wait``).
        """
        return self.send_encoded(endpoint, self.encode(endpoint, messages), wait, deadline)

    def send_encoded(
        self,
        endpoint: Endpoint,
        items: Sequence[EncodedPair],
        wait: Wait = time.sleep,
        deadline: Deadline = None,
        *,
        on_settled: Settled | None = None,
    ) -> BatchResult:
        """``send_batch`` for records already encoded with ``encode`` (no second encoding).

        ``items`` may be ``Encoded`` or plain ``(message, data)`` pairs. ``on_settled`` is
        told the outcomes of records as they are settled, before the call returns (see
        ``Settled``).
        """
        call = _Call(self, wait, deadline, on_settled)
        groups = self._by_credentials(endpoint, items)
        settled: list[list[Outcome]] = []
        refusals: list[str] = []
        by_proxy = False
        for credentials, positions in groups:
            group = items if len(groups) == 1 else [items[p] for p in positions]
            if by_proxy:
                # Every request of the call goes through the proxy that refused its own
                # credentials: no other group can get past it.
                failed = DeliveryStatus.FAILED
                unsent = [self._outcome(endpoint, group, failed, _PROXY_REFUSED_EARLIER)]
                settled.append(call.settle(unsent))
                continue
            # A refusal by Mixpanel stops only its own credentials: the other groups carry
            # others, which Mixpanel judges on their own.
            outcomes, refused = self._deliver_all(endpoint, credentials, group, call)
            settled.append(outcomes)
            if refused is not None:
                refusals.append(self._refusal_text(endpoint, credentials, refused))
                by_proxy = refused.answer.proxy_refused
        if len(groups) == 1:
            result = BatchResult(tuple(settled[0]))
        else:
            result = BatchResult(_in_given_order(len(items), groups, settled))
        if refusals:
            raise AuthenticationError(" ".join(refusals), result.reports)
        return result

    def _by_credentials(
        self, endpoint: Endpoint, items: Sequence[EncodedPair]
    ) -> list[tuple[ImportCredentials | None, list[int]]]:
        """Positions of ``items`` grouped by the credentials that authenticate them."""
        if endpoint != "import":
            return [(None, list(range(len(items))))]
        groups: dict[ImportCredentials | None, list[int]] = {}
        for position, item in enumerate(items):
            message = message_in(endpoint, item)
            key = (
                self._credentials
                if message is None
                else credentials_for(message, self._credentials)
            )
            groups.setdefault(key, []).append(position)
        return list(groups.items())

    def _deliver_all(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        items: Sequence[EncodedPair],
        call: _Call,
    ) -> tuple[list[Outcome], _CredentialsRefusedError | None]:
        """The outcomes of ``items``, and the refusal that stopped them, if any.

        After a 401/403 (or 407) the records not yet sent are FAILED unsent (the same
        credentials would be refused again); those already settled keep their outcomes,
        also the halves of a split batch sent before the refused one: a record Mixpanel
        accepted and reported FAILED would be sent again (a profile ``$add`` applied twice).
        """
        fmt = self._formats[endpoint]
        limit = records_limit(endpoint, self.options.max_batch_records)
        outcomes: list[Outcome] = []
        sent = 0
        for batch in split_encoded(items, fmt, self.options.max_batch_bytes, limit):
            call.too_large = None  # what a 413 taught holds for the halves of its own request
            try:
                outcomes.extend(self._deliver(endpoint, credentials, batch, call, 0))
            except _CredentialsRefusedError as error:
                outcomes.extend(error.settled)  # announced by the halves that settled them
                ended = [self._failed(endpoint, error.batch, error.answer, error.attempts)]
                # Batches and halves are contiguous runs of ``items``: what follows the
                # refused request was not sent.
                done = sent + sum(len(o.items) for o in error.settled) + len(error.batch)
                rest = items[done:]
                if rest:
                    failed = DeliveryStatus.FAILED
                    ended.append(self._outcome(endpoint, rest, failed, error.not_sent))
                outcomes.extend(call.settle(ended))
                return outcomes, error
            sent += len(batch)
        return outcomes, None

    def _deliver(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        batch: list[EncodedPair],
        call: _Call,
        attempts: int,
        started: float | None = None,
        narrow: bool = True,
        unnamed: Classification | None = None,
    ) -> list[Outcome]:
        """One batch until it is settled: accepted, rejected, split, or out of budget.

        ``started``: when its retry budget started (a half shares its batch's), ``None`` to
        start it at its first attempt. ``narrow``: whether a ``status: 0`` may be narrowed
        down by sending halves again (see ``_halves``). ``unnamed``: the ``status: 0`` that
        split the batch this one is a half of (see ``_Split.unnamed``).

        Announces what it settles (``call.settle``) in this one place: a batch split in
        halves announces nothing of its own, each half announces its records, so none is
        announced twice. A refusal of the credentials (raised) is announced by
        ``_deliver_all``, which knows what it leaves unsent.
        """
        settled = self._attempt(
            endpoint, credentials, batch, call, attempts, started, narrow, unnamed
        )
        if isinstance(settled, _Split):
            return self._halves(endpoint, credentials, batch, call, settled)
        return call.settle(settled)

    def _attempt(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        batch: list[EncodedPair],
        call: _Call,
        attempts: int,
        started: float | None,
        narrow: bool,
        unnamed: Classification | None,
    ) -> list[Outcome] | _Split:
        """``batch`` sent and retried until it is settled, or to be split into halves.

        Its first attempt is bounded by the timeouts (and the deadline) only; each retry also
        by what is left of the retry budget, and is not made once nothing is left. A half of
        a batch a ``status: 0`` split (``unnamed``) is sent as a retry of that batch is.
        """
        if endpoint == "import" and credentials is None:
            return [self._outcome(endpoint, batch, DeliveryStatus.FAILED, _NO_CREDENTIALS)]
        body = self._formats[endpoint].body(batch)
        if len(body) > self.options.max_batch_bytes and len(batch) > 1:
            # Percent-encoding made the body bigger than the budget: split before sending.
            return _Split(attempts, started, unnamed=unnamed)
        if self.options.gzip:
            # Once per batch, so every retry resends the very same bytes. Level 5: most of
            # the size win of 9 at a fraction of the CPU, on JSON. mtime=0: the header would
            # otherwise carry the time of each compression.
            body = gzip.compress(body, compresslevel=5, mtime=0)
        if call.too_large is not None and len(body) >= call.too_large and len(batch) > 1:
            # As large as a body a 413 refused: split without sending it. Only split: a record
            # is rejected on the server's own answer (a 413 may not be about the size, and
            # one body compresses better than another). A half of a status 0 stays one.
            return _Split(attempts, started, unnamed=unnamed)
        retries = 0
        # A half of a status 0 being narrowed down is sent as a retry of its batch is; a half
        # of a 413 is a request of its own (a smaller body is not the same request again).
        answer = unnamed
        while True:
            reason = call.why_not_send()
            if reason is not None:
                return [
                    self._outcome(endpoint, batch, DeliveryStatus.FAILED, reason, None, attempts)
                ]
            budget: float | None = None
            if started is None:
                started = time.monotonic()
            elif answer is not None:
                # A retry, or a half of a status 0: it must end within the budget, like the
                # waits before it; a half is not sent with less of it left than an answer
                # needs (a retry's wait already made sure of that).
                budget = call.budget_left(started)
                if budget <= 0 or (retries == 0 and budget < self._least_attempt):
                    return [self._out_of_budget(endpoint, batch, answer, attempts)]
            attempts += 1
            answer = self._post(endpoint, credentials, body, len(batch), call, budget=budget)
            verdict = answer.verdict
            if verdict is Verdict.ACCEPTED:
                return [
                    self._outcome(
                        endpoint, batch, DeliveryStatus.ACCEPTED, None, answer.http_status, attempts
                    )
                ]
            if verdict is Verdict.PARTIAL:
                return self._partial(endpoint, batch, answer, attempts)
            if verdict is Verdict.REJECTED:
                return [self._rejected(endpoint, batch, answer, attempts)]
            if verdict is Verdict.UNNAMED:
                return self._unnamed(endpoint, batch, answer, call, attempts, started, narrow)
            if verdict is Verdict.AUTH:
                raise _CredentialsRefusedError(answer, attempts, batch)
            if verdict is Verdict.TOO_LARGE:
                if call.too_large is None or len(body) < call.too_large:
                    call.too_large = len(body)
                if len(batch) == 1:
                    return [self._rejected(endpoint, batch, answer, attempts)]
                return _Split(attempts, started, unnamed=unnamed)
            if verdict is Verdict.FAILED:
                return [self._failed(endpoint, batch, answer, attempts)]
            retries += 1
            if not call.policy.may_retry(retries):
                why = f"(max_retries is {call.policy.max_retries})"
                return [self._failed(endpoint, batch, answer, attempts, why)]
            delay = call.policy.delay(
                retries, rate_limited=answer.rate_limited, retry_after=answer.retry_after
            )
            left = call.remaining(started)
            # A retry needs time for its answer too: one sent with a sliver of the budget
            # left is cut off by its total time after Mixpanel may have applied it, and
            # reported FAILED (sent again later: a profile $add applied twice).
            if delay + self._least_attempt > left:
                return [
                    self._failed(endpoint, batch, answer, attempts, _why_not_waited(answer, left))
                ]
            if not call.wait(delay):
                # The caller is stopping (a buffered sender's close ran out of time): what the
                # call settled so far keeps its outcome, so nothing accepted is reported FAILED
                # and sent again from the dead letters (a profile $add applied twice).
                return [self._failed(endpoint, batch, answer, attempts, _CUT_SHORT)]

    def _halves(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        batch: list[EncodedPair],
        call: _Call,
        split: _Split,
    ) -> list[Outcome]:
        """Each half of ``batch`` delivered as a batch of its own (and split again if need be).

        A refusal of the second half carries the outcomes of the first, already settled.

        Looking for the records a ``status: 0`` refused, a second half is not narrowed down
        when every record of the first half (two or more) was refused: a batch Mixpanel
        refuses whole (a wrong project token, events older than 5 days) would otherwise cost
        a request per record and as many again. Its second half, if refused too, is rejected
        whole, so such a batch of n records costs about 2·log2(n) requests. One refused
        record among valid ones never leaves a half wholly refused: every valid record is
        still found and ACCEPTED.
        """
        half = len(batch) // 2
        attempts, started = split.attempts, split.started
        first = self._deliver(
            endpoint, credentials, batch[:half], call, attempts, started, True, split.unnamed
        )
        narrow = not (
            split.unnamed is not None
            and half >= WHOLLY_REFUSED
            and all(o.status is DeliveryStatus.REJECTED for o in first)
        )
        try:
            second = self._deliver(
                endpoint, credentials, batch[half:], call, attempts, started, narrow, split.unnamed
            )
        except _CredentialsRefusedError as error:
            error.settled[:0] = first
            raise
        return first + second

    def _unnamed(
        self,
        endpoint: Endpoint,
        batch: list[EncodedPair],
        answer: Classification,
        call: _Call,
        attempts: int,
        started: float,
        narrow: bool,
    ) -> list[Outcome] | _Split:
        """``status: 0`` for several records: Mixpanel stored the valid ones, named none.

        Events that all carry an ``$insert_id`` are sent again in halves until each refused
        record stands alone: Mixpanel counts a resent event once, so only the refused records
        end REJECTED, each with Mixpanel's reason, and the others ACCEPTED. Profile updates
        (``$add``, ``$append``...) would be applied twice, and so would events without an
        ``$insert_id``: those stay REJECTED together, saying that the valid ones may have been
        applied. So does a split that the retry budget cuts short, and a half not to be
        narrowed down (see ``_halves``).
        """
        why = None
        if endpoint != "track":
            why = "resending would apply operations such as $add twice"
        elif not all(_deduplicated(endpoint, item) for item in batch):
            why = "resending events without an $insert_id would count them twice"
        elif call.budget_left(started) <= 0:
            # Past the deadline instead, the halves are reported FAILED, not sent: they are
            # sent again later rather than rejected unexamined.
            why = "the retry budget ran out before the refused records were found"
        elif not narrow:
            why = (
                "the records before them in the request were all refused too, so these were "
                "not sent again one by one (a wrong project token or events older than 5 days "
                "refuse every record)"
            )
        if why is None:
            return _Split(attempts, started, unnamed=answer)
        return [self._refused_unnamed(endpoint, batch, answer, attempts, why)]

    def _refused_unnamed(
        self,
        endpoint: Endpoint,
        batch: list[EncodedPair],
        answer: Classification,
        attempts: int,
        why: str,
    ) -> Outcome:
        """``batch``, refused by a ``status: 0`` that named none of its records, REJECTED
        whole: ``why`` says why its refused records were not looked for."""
        reason = (
            f"{answer.reason} (Mixpanel refused some of the {len(batch)} records of this "
            "request and may have applied the valid ones; which cannot be told, as "
            f"{why})"
        )
        return self._outcome(
            endpoint, batch, DeliveryStatus.REJECTED, reason, answer.http_status, attempts
        )

    def _out_of_budget(
        self,
        endpoint: Endpoint,
        batch: list[EncodedPair],
        answer: Classification,
        attempts: int,
    ) -> Outcome:
        """``batch`` not sent (again): the retry budget ran out after ``answer``."""
        if answer.verdict is Verdict.UNNAMED:  # a half of a status 0 being narrowed down
            why = "the retry budget ran out before the refused records were found"
            return self._refused_unnamed(endpoint, batch, answer, attempts, why)
        return self._failed(endpoint, batch, answer, attempts)

    def _post(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        body: bytes,
        records: int,
        call: _Call,
        *,
        budget: float | None = None,
    ) -> Classification:
        """One attempt; ``budget``: what is left of the retry budget for a retry, which
        bounds it (see ``_timeout``)."""
        headers = {"Content-Type": self._formats[endpoint].content_type}
        if self.options.gzip:
            headers["Content-Encoding"] = "gzip"  # ``body`` was compressed by ``_deliver``
        url = self.urls[endpoint]
        params: dict[str, str] = {}
        if endpoint == "import":
            if self.options.strict:
                params["strict"] = "1"
            if credentials is not None:
                headers["Authorization"] = credentials.header.reveal()
                if credentials.project_id is not None:
                    params["project_id"] = credentials.project_id
        if params:  # after the query of a mixpanel.urls.NAME, if it has one
            url = f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(params)}"
        try:
            if call.movable:
                response = self._post_watched(url, body, headers, call, budget)
            else:
                timeout, total = self._timeout(call, budget)
                response = self._http.post(url, body, headers, timeout, total)
        except _AbandonedError as exc:
            return Classification(Verdict.FAILED, None, str(exc))
        except ProxyAuthError as exc:
            return proxy_refusal(str(exc))
        except TlsError as exc:
            # A refused certificate does not fix itself between retries: fail now, say why.
            # (A handshake the peer cut short arrives as a NetworkError and is retried.)
            shown = shown_url(self.urls[endpoint])  # a query may hold a credential
            return Classification(Verdict.FAILED, None, f"TLS failure talking to {shown}: {exc}")
        except NetworkError as exc:
            return network_failure(str(exc))
        except RequestError as exc:
            return Classification(Verdict.FAILED, None, str(exc))
        return classify_response(
            endpoint, response.status_code, response.content, response.headers, records
        )

    def _post_watched(
        self, url: str, body: bytes, headers: dict[str, str], call: _Call, budget: float | None
    ) -> Response:
        """``post`` on a thread of its own, abandoned once the call's deadline passes.

        A request's timeouts are fixed when it starts, and a deadline that moves (SIGTERM
        starting the forwarder's shutdown clock) may pass long before they run out. The
        thread ends on its own within those timeouts; its answer, if any, is then ignored:
        the records were reported FAILED and are sent again later, as after a timeout.

        A caller's ``wait`` that is a ``WaitWhileOut`` is kept busy while the request is out,
        instead of this thread sleeping on the answer, and told the answer. Other waits are
        not called here.
        """
        answer: concurrent.futures.Future[Response] = concurrent.futures.Future()
        timeout, total = self._timeout(call, budget)

        def post() -> None:
            try:
                answer.set_result(self._http.post(url, body, headers, timeout, total))
            except BaseException as exc:  # whatever ends the thread must end the wait too
                answer.set_exception(exc)

        wait = call._wait
        busy = wait if isinstance(wait, WaitWhileOut) else None
        started = time.monotonic()
        threading.Thread(target=post, name="mixpanel-core-request", daemon=True).start()
        while True:
            if busy is None:
                done, _ = concurrent.futures.wait([answer], WATCH_INTERVAL)
            else:
                began = time.monotonic()
                busy.while_request_out(WATCH_INTERVAL)
                # A wait that returned at once (its own deadline passed) must not spin.
                left = WATCH_INTERVAL - (time.monotonic() - began)
                done, _ = concurrent.futures.wait([answer], max(0.0, left))
            if done:
                if busy is not None:
                    error = answer.exception()
                    busy.request_answered(answer.result() if error is None else error)
                return answer.result()
            if call.past_deadline():
                raise _AbandonedError(
                    f"no answer {time.monotonic() - started:.1f}s after the request was sent, "
                    "when the deadline passed: abandoned (Mixpanel may still receive it)"
                )

    def _timeout(
        self, call: _Call, budget: float | None = None
    ) -> tuple[tuple[float, float], float]:
        """The options' ``(connect, read)`` timeouts, and the most the whole attempt may take:
        ``request_ceiling`` of them (a server trickling its answer is cut off there), each
        clamped to the time left before the deadline and, for a retry, of the ``budget``."""
        connect, read = self.options.timeout
        total = request_ceiling(connect, read)
        left = budget
        deadline = call.deadline
        if deadline is not None:
            before = deadline - time.monotonic()
            left = before if left is None else min(left, before)
        if left is not None:
            left = max(0.01, left)
            connect, read, total = min(connect, left), min(read, left), min(total, left)
        return (connect, read), total

    def close(self) -> None:
        """Close every pooled connection."""
        self._http.close()

    # -- outcomes -------------------------------------------------------------------------

    def _outcome(
        self,
        endpoint: Endpoint,
        items: Sequence[EncodedPair],
        status: DeliveryStatus,
        reason: str | None,
        http_status: int | None = None,
        attempts: int = 0,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> Outcome:
        return Outcome(
            endpoint, items, status, self.name, reason, http_status, attempts, field, retry_after
        )

    def _failed(
        self,
        endpoint: Endpoint,
        items: Sequence[EncodedPair],
        answer: Classification,
        attempts: int,
        why: str = "within the retry budget",
    ) -> Outcome:
        reason = answer.reason or "failed"
        if answer.verdict is Verdict.RETRY:
            reason = f"gave up after {attempts} attempt(s) {why}: {reason}"
        # Kept for whoever sends the records again later (the forwarder's next round): the
        # server's Retry-After holds for that send too.
        return self._outcome(
            endpoint,
            items,
            DeliveryStatus.FAILED,
            reason,
            answer.http_status,
            attempts,
            retry_after=answer.retry_after,
        )

    def _rejected(
        self,
        endpoint: Endpoint,
        items: Sequence[EncodedPair],
        answer: Classification,
        attempts: int,
    ) -> Outcome:
        return self._outcome(
            endpoint, items, DeliveryStatus.REJECTED, answer.reason, answer.http_status, attempts
        )

    def _partial(
        self,
        endpoint: Endpoint,
        batch: list[EncodedPair],
        answer: Classification,
        attempts: int,
    ) -> list[Outcome]:
        """Each record Mixpanel named is rejected on its own; the runs between are accepted."""
        failures: dict[int, list[str]] = {}
        fields: dict[int, str | None] = {}
        for failure in answer.failures:
            failures.setdefault(failure.index, []).append(
                f"{failure.field}: {failure.message}" if failure.field else failure.message
            )
            fields.setdefault(failure.index, failure.field)
        outcomes = []
        status = answer.http_status
        runs = itertools.groupby(enumerate(batch), key=lambda pair: pair[0] in failures)
        for rejected, run in runs:
            if not rejected:
                accepted = [item for _, item in run]
                outcomes.append(
                    self._outcome(
                        endpoint, accepted, DeliveryStatus.ACCEPTED, None, status, attempts
                    )
                )
                continue
            for index, item in run:
                reason = "; ".join(failures[index])
                outcomes.append(
                    self._outcome(
                        endpoint,
                        [item],
                        DeliveryStatus.REJECTED,
                        reason,
                        status,
                        attempts,
                        fields[index],
                    )
                )
        return outcomes

    def _refusal_text(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        error: _CredentialsRefusedError,
    ) -> str:
        if error.answer.proxy_refused:
            return self._proxy_refusal_text(endpoint, error)
        used = (
            credentials.describe()
            if credentials is not None
            else "project token inside the records"
        )
        return (
            f"Mixpanel refused the {used} for /{endpoint} "
            f"(HTTP {error.answer.http_status}): {error.answer.reason}. Retrying cannot help: "
            "check that credential where it is given (in code: credentials=, api_secret= or "
            "the project token; in a TOML file: service_account_username/"
            "service_account_secret with project_id, api_secret or token under [mixpanel])."
        )

    def _proxy_refusal_text(self, endpoint: Endpoint, error: _CredentialsRefusedError) -> str:
        """What a 407 means: the proxy, not Mixpanel, refused; names no credential."""
        proxy = self._http.describe_proxy(self.urls[endpoint])
        if proxy is None:
            return (
                f"A proxy on the way to /{endpoint}, which none of HTTPS_PROXY, HTTP_PROXY "
                f"or ALL_PROXY names, asked for credentials ({error.answer.reason}). Retrying "
                "cannot help: name that proxy in HTTPS_PROXY (HTTP_PROXY for http:// URLs), "
                "with its credentials: http://user:password@host:port."
            )
        return (
            f"{proxy[0].upper()}{proxy[1:]}, not Mixpanel, refused the request to /{endpoint} "
            f"({error.answer.reason}). Retrying cannot help: set the proxy's user name and "
            "password right in its URL (http://user:password@host:port, with characters such "
            "as @ or : percent-encoded)."
        )


def _why_not_waited(answer: Classification, left: float) -> str:
    """Why the next wait was not started: what ``_failed`` says after "gave up after N"."""
    if answer.retry_after is not None and answer.retry_after > left:
        return (
            f"(the answer asked to wait {answer.retry_after:.1f}s with Retry-After, more than "
            f"the {max(0.0, left):.1f}s left of the retry budget or before the deadline)"
        )
    return "within the retry budget"


def _deduplicated(endpoint: Endpoint, item: EncodedPair) -> bool:
    """Whether Mixpanel would count the record once if it were sent again: it has an
    ``$insert_id``. Read only after a ``status: 0``, so rebuilding a message costs little."""
    message = message_in(endpoint, item)
    return message is not None and message.insert_id is not None


def _in_given_order(
    count: int,
    groups: list[tuple[ImportCredentials | None, list[int]]],
    settled: list[list[Outcome]],
) -> tuple[Outcome, ...]:
    """The outcomes of records sent in groups, one per record, back in the order given.

    Only ``/import`` batches mixing credentials get here, so one outcome per record is fine.
    """
    ordered: list[Outcome | None] = [None] * count
    for (_, positions), outcomes in zip(groups, settled, strict=True):
        singles = [attrs.evolve(o, items=[item]) for o in outcomes for item in o.items]
        for position, single in zip(positions, singles, strict=True):
            ordered[position] = single
    return tuple(o for o in ordered if o is not None)


_PAST_DEADLINE = "not sent: the deadline passed first"

_STOPPED = "not sent: the call was stopped first (a wait before a retry was cut short)"

_CUT_SHORT = "(the wait before the next attempt was cut short: the call was stopped)"

_REFUSED_EARLIER = "not sent: Mixpanel refused the credentials of an earlier request"

_PROXY_REFUSED_EARLIER = (
    "not sent: the proxy refused its credentials (HTTP 407) for an earlier request"
)

_NO_CREDENTIALS = (
    "not sent: /import needs credentials; set mixpanel.service_account_username, "
    "service_account_secret and project_id (recommended), or api_secret, or token"
)
