"""``IngestionClient``: sends batches to Mixpanel's ingestion API and says what became of each.

The one place that encodes, authenticates, compresses, posts, classifies and retries. Both
HTTP transports and the forwarder deliver through it. The retry loop is ours (not urllib3's)
because it must classify each record, split on 413 (and on a ``/track`` ``status: 0`` that does
not say which records were refused), respect a time budget and a deadline that may move, and do
all of its waiting through the caller's ``wait`` function, which may also stop the call. It
tells the caller which records are settled as it goes (``on_settled``), not only at the end.

This module holds the delivery loop; what it uses reads on its own: ``call`` (what one call
shares between its requests: the caller's wait, deadline and ``on_settled``), ``posting`` (one
attempt, under the watchdog or a deadline that moves), ``narrowing`` (splitting a batch in
halves on a 413, or to find what a ``status: 0`` refused) and ``outcomes`` (the outcomes and
the texts of their reasons).
"""

from __future__ import annotations

import functools
import gzip
import time
from collections.abc import Callable, Mapping, Sequence

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion.auth import (
    ImportCredentials,
    configured_credentials,
    credentials_for,
)
from mixpanel_core.ingestion.batching import records_limit, split_encoded
from mixpanel_core.ingestion.call import Call, Deadline, Settled, Wait
from mixpanel_core.ingestion.classify import Classification, Verdict
from mixpanel_core.ingestion.encoding import (
    Encoded,
    EncodedPair,
    WireFormat,
    message_in,
    wire_format,
)
from mixpanel_core.ingestion.endpoints import endpoint_urls, url_query
from mixpanel_core.ingestion.http import HttpSession
from mixpanel_core.ingestion.narrowing import (
    Split,
    beyond_retry_limit,
    counted_once,
    halves,
    out_of_budget,
    split_or_reject_unnamed,
)
from mixpanel_core.ingestion.options import HttpOptions
from mixpanel_core.ingestion.outcomes import (
    CUT_SHORT,
    NO_CREDENTIALS,
    PROXY_REFUSED_EARLIER,
    CredentialsRefusedError,
    Outcomes,
    in_given_order,
    refusal_text,
    why_not_waited,
)
from mixpanel_core.ingestion.posting import EndpointRedactors, Poster
from mixpanel_core.ingestion.request_watch import request_ceiling
from mixpanel_core.ingestion.result import BatchResult, Outcome
from mixpanel_core.ingestion.retries_logged import RetriesLogged
from mixpanel_core.messages import ENDPOINTS, Endpoint, Message
from mixpanel_core.redactor import Redactor
from mixpanel_core.settings import MixpanelSettings

LEAST_ATTEMPT = 1.0
"""Seconds of the retry budget a retry needs left to be sent at all (less when a quarter of
the budget, or the timeouts' ceiling, is less): one sent with less is cut off after Mixpanel
may have applied it."""


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
        self._settings = settings
        self._options = options or HttpOptions()
        self._name = name
        self._urls = endpoint_urls(settings)
        self._credentials = configured_credentials(settings)
        self._formats = {
            e: wire_format(e, self.options.import_format, "ip" in url_query(self._urls[e]))
            for e in ENDPOINTS
        }
        self._http = HttpSession(self.options.pool_size, settings.verify_tls, settings.ca_bundle)
        redactors = EndpointRedactors(Redactor.of_settings(settings), self._http, self.urls)
        self._poster = Poster(self._http, self.urls, self._formats, self.options, redactors)
        self._outcomes = Outcomes(name)
        self._retries_logged = RetriesLogged.of(name)
        self._least_attempt = min(
            LEAST_ATTEMPT,
            self.options.retry_budget / 4,
            request_ceiling(*self.options.timeout),
        )

    # Read-only: the parts the client is made of (its poster, its outcomes, its wire formats
    # and session) were built from them, and a client given other ones would disagree with
    # itself (a body compressed and sent without its ``Content-Encoding``). Build another.
    @property
    def settings(self) -> MixpanelSettings:
        return self._settings

    @property
    def options(self) -> HttpOptions:
        return self._options

    @property
    def name(self) -> str:
        """The transport name written into the reports."""
        return self._name

    @property
    def urls(self) -> Mapping[Endpoint, str]:
        """The URL of each endpoint."""
        return self._urls

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
        stop: Callable[[], bool] | None = None,
    ) -> BatchResult:
        """``send_batch`` for records already encoded with ``encode`` (no second encoding).

        ``items`` may be ``Encoded`` or plain ``(message, data)`` pairs. ``on_settled`` is
        told the outcomes of records as they are settled, before the call returns (see
        ``Settled``). ``stop`` says when the call is stopped, as a ``wait`` returning
        ``False`` does, whenever the caller stops it: asked before each request starts.
        """
        call = Call(self.options.retry_policy, wait, deadline, on_settled, stop)
        try:
            return self._send_groups(endpoint, items, call)
        finally:
            # Retries counted and not said a minute after their last line: said as a call ends.
            self._retries_logged.say_overdue()

    def _send_groups(
        self, endpoint: Endpoint, items: Sequence[EncodedPair], call: Call
    ) -> BatchResult:
        """``send_encoded``: each group of records sharing credentials delivered in turn."""
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
                unsent = [self._outcomes.of(endpoint, group, failed, PROXY_REFUSED_EARLIER)]
                settled.append(call.settle(unsent))
                continue
            # A refusal by Mixpanel stops only its own credentials: the other groups carry
            # others, which Mixpanel judges on their own.
            outcomes, refused = self._deliver_all(endpoint, credentials, group, call)
            settled.append(outcomes)
            if refused is not None:
                url = self.urls[endpoint]
                refusals.append(refusal_text(endpoint, credentials, refused, self._http, url))
                by_proxy = refused.answer.proxy_refused
        if len(groups) == 1:
            result = BatchResult(tuple(settled[0]))
        else:
            result = BatchResult(in_given_order(len(items), groups, settled))
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
        call: Call,
    ) -> tuple[list[Outcome], CredentialsRefusedError | None]:
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
            except CredentialsRefusedError as error:
                outcomes.extend(error.settled)  # announced by the halves that settled them
                ended = [self._outcomes.failed(endpoint, error.batch, error.answer, error.attempts)]
                # Batches and halves are contiguous runs of ``items``: what follows the
                # refused request was not sent.
                done = sent + sum(len(o.items) for o in error.settled) + len(error.batch)
                rest = items[done:]
                if rest:
                    failed = DeliveryStatus.FAILED
                    ended.append(self._outcomes.of(endpoint, rest, failed, error.not_sent))
                outcomes.extend(call.settle(ended))
                return outcomes, error
            sent += len(batch)
        return outcomes, None

    def _deliver(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        batch: list[EncodedPair],
        call: Call,
        attempts: int,
        started: float | None = None,
        narrow: bool = True,
        unnamed: Classification | None = None,
        resends: int = 0,
    ) -> list[Outcome]:
        """One batch until it is settled: accepted, rejected, split, or out of budget.

        ``started``: when its retry budget started (a half shares its batch's), ``None`` to
        start it at its first attempt. ``narrow``: whether a ``status: 0`` may be narrowed
        down by sending halves again (see ``narrowing.halves``). ``unnamed``: the ``status: 0`` that
        split the batch this one is a half of (see ``Split.unnamed``), and ``resends`` how
        often its records were sent again already (see ``Split.resends``).

        Announces what it settles (``call.settle``) in this one place: a batch split in
        halves announces nothing of its own, each half announces its records, so none is
        announced twice. A refusal of the credentials (raised) is announced by
        ``_deliver_all``, which knows what it leaves unsent.
        """
        if unnamed is not None:
            # A half of a status 0 is sent as a retry of its records is: max_retries bounds
            # how often a record is sent again, however the resends are made. A status 0
            # checks it before it splits (see split_or_reject_unnamed): only the halves of a
            # 413 within the search, or of the byte budget, are stopped here.
            stopped = beyond_retry_limit(
                self._outcomes, endpoint, batch, unnamed, call, attempts, resends + 1
            )
            if stopped is not None:
                return call.settle([stopped])
        settled = self._attempt(
            endpoint, credentials, batch, call, attempts, started, narrow, unnamed, resends
        )
        if isinstance(settled, Split):

            def deliver(
                half: list[EncodedPair],
                attempts: int,
                started: float | None,
                narrow: bool,
                unnamed: Classification | None,
                resends: int,
            ) -> list[Outcome]:
                return self._deliver(
                    endpoint, credentials, half, call, attempts, started, narrow, unnamed, resends
                )

            return halves(batch, settled, deliver)
        return call.settle(settled)

    def _attempt(
        self,
        endpoint: Endpoint,
        credentials: ImportCredentials | None,
        batch: list[EncodedPair],
        call: Call,
        attempts: int,
        started: float | None,
        narrow: bool,
        unnamed: Classification | None,
        resends: int,
    ) -> list[Outcome] | Split:
        """``batch`` sent and retried until it is settled, or to be split into halves.

        Its first attempt is bounded by the timeouts (and the deadline) only; each retry also
        by what is left of the retry budget, and is not made once nothing is left. A half of
        a batch a ``status: 0`` split (``unnamed``) is sent as a retry of that batch is, and
        counts as one against ``max_retries`` (with the ``resends`` made before it).
        """
        if endpoint == "import" and credentials is None:
            return [self._outcomes.of(endpoint, batch, DeliveryStatus.FAILED, NO_CREDENTIALS)]
        body = self._formats[endpoint].body(batch)
        if len(body) > self.options.max_batch_bytes and len(batch) > 1:
            # Percent-encoding made the body bigger than the budget: split before sending.
            return Split(attempts, started, unnamed=unnamed, resends=resends)
        if self.options.gzip:
            # Once per batch, so every retry resends the very same bytes. Level 5: most of
            # the size win of 9 at a fraction of the CPU, on JSON. mtime=0: the header would
            # otherwise carry the time of each compression.
            body = gzip.compress(body, compresslevel=5, mtime=0)
        if call.too_large is not None and len(body) >= call.too_large and len(batch) > 1:
            # As large as a body a 413 refused: split without sending it. Only split: a record
            # is rejected on the server's own answer (a 413 may not be about the size, and
            # one body compresses better than another). A half of a status 0 stays one.
            return Split(attempts, started, unnamed=unnamed, resends=resends)
        retries = 0
        # A half of a status 0 being narrowed down is sent as a retry of its batch is; a half
        # of a 413 is a request of its own (a smaller body is not the same request again).
        answer = unnamed
        # Counted against max_retries as a retry is (``_deliver`` made sure one is left).
        resends += 1 if unnamed is not None else 0
        while True:
            reason = call.why_not_send()
            if reason is not None:
                return [
                    self._outcomes.of(
                        endpoint, batch, DeliveryStatus.FAILED, reason, None, attempts
                    )
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
                    return [out_of_budget(self._outcomes, endpoint, batch, answer, attempts)]
            attempts += 1
            answer = self._poster.post(
                endpoint,
                credentials,
                body,
                len(batch),
                call,
                budget=budget,
                counted_once=functools.partial(counted_once, endpoint, batch),
            )
            if answer.maybe_received:
                call.doubt(batch)  # whatever answers later, unless Mixpanel accepts them
            verdict = answer.verdict
            if verdict is Verdict.ACCEPTED:
                return [
                    self._outcomes.of(
                        endpoint, batch, DeliveryStatus.ACCEPTED, None, answer.http_status, attempts
                    )
                ]
            if verdict is Verdict.PARTIAL:
                return self._outcomes.partial(endpoint, batch, answer, attempts)
            if verdict is Verdict.REJECTED:
                return [self._outcomes.rejected(endpoint, batch, answer, attempts)]
            if verdict is Verdict.UNNAMED:
                return split_or_reject_unnamed(
                    self._outcomes,
                    endpoint,
                    batch,
                    answer,
                    call,
                    attempts,
                    started,
                    narrow,
                    resends,
                )
            if verdict is Verdict.AUTH:
                raise CredentialsRefusedError(answer, attempts, batch)
            if verdict is Verdict.TOO_LARGE:
                if call.too_large is None or len(body) < call.too_large:
                    call.too_large = len(body)
                if len(batch) == 1:
                    return [self._outcomes.rejected(endpoint, batch, answer, attempts)]
                # The halves of a 413 outside a search are requests of their own: the
                # retries of this one do not count against theirs.
                return Split(attempts, started, unnamed, resends if unnamed is not None else 0)
            if verdict is Verdict.FAILED:
                return [self._outcomes.failed(endpoint, batch, answer, attempts)]
            retries += 1
            resends += 1
            if not call.policy.may_retry(resends):
                # Named by the limit, not by an option: a compat user set it as retry_limit.
                limit = call.policy.max_retries
                why = f"(the limit of {limit} {'retry' if limit == 1 else 'retries'})"
                return [self._outcomes.failed(endpoint, batch, answer, attempts, why)]
            delay = call.policy.delay(
                retries, rate_limited=answer.rate_limited, retry_after=answer.retry_after
            )
            left = call.remaining(started)
            # A retry needs time for its answer too: one sent with a sliver of the budget
            # left is cut off by its total time after Mixpanel may have applied it, and
            # reported FAILED (sent again later: a profile $add applied twice).
            if delay + self._least_attempt > left:
                return [
                    self._outcomes.failed(
                        endpoint,
                        batch,
                        answer,
                        attempts,
                        why_not_waited(answer, left, self._least_attempt),
                    )
                ]
            spent = time.monotonic() - started
            self._retries_logged.retrying(
                endpoint, len(batch), answer, retries, delay, spent, call.policy.budget
            )
            if not call.wait(delay):
                self._retries_logged.not_retried(endpoint)
                # The caller is stopping (a buffered sender's close ran out of time): what the
                # call settled so far keeps its outcome, so nothing accepted is reported FAILED
                # and sent again from the dead letters (a profile $add applied twice).
                return [self._outcomes.failed(endpoint, batch, answer, attempts, CUT_SHORT)]

    def close(self) -> None:
        """Close every pooled connection."""
        self._http.close()
