"""The outcomes a call settles, one per run of records with its status, and what their
reasons say (a refusal of the credentials, records not sent, a retry given up)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.ingestion.auth import ImportCredentials
from mixpanel_core.ingestion.classify import Classification, Verdict
from mixpanel_core.ingestion.encoding import EncodedPair
from mixpanel_core.ingestion.http import HttpSession
from mixpanel_core.ingestion.result import Outcome
from mixpanel_core.messages import Endpoint


class Outcomes:
    """Makes the outcomes of one client's records, its transport ``name`` in each report."""

    def __init__(self, name: str) -> None:
        self.name = name

    def of(
        self,
        endpoint: Endpoint,
        items: Sequence[EncodedPair],
        status: DeliveryStatus,
        reason: str | None,
        http_status: int | None = None,
        attempts: int = 0,
        field: str | None = None,
        retry_after: float | None = None,
        maybe_applied: bool = False,
    ) -> Outcome:
        return Outcome(
            endpoint,
            items,
            status,
            self.name,
            reason,
            http_status,
            attempts,
            field,
            retry_after,
            maybe_applied,
        )

    def failed(
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
        return self.of(
            endpoint,
            items,
            DeliveryStatus.FAILED,
            reason,
            answer.http_status,
            attempts,
            retry_after=answer.retry_after,
        )

    def rejected(
        self,
        endpoint: Endpoint,
        items: Sequence[EncodedPair],
        answer: Classification,
        attempts: int,
    ) -> Outcome:
        return self.of(
            endpoint, items, DeliveryStatus.REJECTED, answer.reason, answer.http_status, attempts
        )

    def partial(
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
                    self.of(endpoint, accepted, DeliveryStatus.ACCEPTED, None, status, attempts)
                )
                continue
            for index, item in run:
                reason = "; ".join(failures[index])
                outcomes.append(
                    self.of(
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


class CredentialsRefusedError(Exception):
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
        return PROXY_REFUSED_EARLIER if self.answer.proxy_refused else REFUSED_EARLIER


def refusal_text(
    endpoint: Endpoint,
    credentials: ImportCredentials | None,
    error: CredentialsRefusedError,
    http: HttpSession,
    url: str,
) -> str:
    """What ``AuthenticationError`` says of ``error``, a refusal of a request to ``url``."""
    if error.answer.proxy_refused:
        return _proxy_refusal_text(endpoint, error, http.describe_proxy(url))
    used = credentials.describe() if credentials is not None else "project token inside the records"
    return (
        f"Mixpanel refused the {used} for /{endpoint} "
        f"(HTTP {error.answer.http_status}): {error.answer.reason}. Retrying cannot help: "
        "check that credential where it is given (in code: credentials=, api_secret= or "
        "the project token; in a TOML file: service_account_username/"
        "service_account_secret with project_id, api_secret or token under [mixpanel])."
    )


def _proxy_refusal_text(
    endpoint: Endpoint, error: CredentialsRefusedError, proxy: str | None
) -> str:
    """What a 407 means: the proxy, not Mixpanel, refused; names no credential."""
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


def why_not_waited(answer: Classification, left: float, least_attempt: float) -> str:
    """Why the next wait was not started: what ``Outcomes.failed`` says after "gave up after
    N". ``least_attempt``: the seconds a retry needs after its wait, which the client adds
    to the wait when it gives up on one too long for the ``left`` seconds; compared the same
    way, so a ``Retry-After`` that alone made it too long is named."""
    retry_after = answer.retry_after
    if retry_after is None or retry_after + least_attempt <= left:
        return "within the retry budget"
    needs = "" if retry_after > left else f" and the {least_attempt:.1f}s a retry needs after it"
    return (
        f"(the answer asked to wait {retry_after:.1f}s with Retry-After{needs}, more than "
        f"the {max(0.0, left):.1f}s left of the retry budget or before the deadline)"
    )


def in_given_order(
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


CUT_SHORT = "(the wait before the next attempt was cut short: the call was stopped)"

REFUSED_EARLIER = "not sent: Mixpanel refused the credentials of an earlier request"

PROXY_REFUSED_EARLIER = (
    "not sent: the proxy refused its credentials (HTTP 407) for an earlier request"
)

_REFUSAL_STATUSES = frozenset({401, 403, 407})


def stopped_by_refusal(report: DeliveryReport) -> bool:
    """Whether ``report``, of a call an ``AuthenticationError`` ended, is of a record its
    refusal stopped: refused with its request, or not sent after it. (The call's other
    reports are of records other credentials took elsewhere: accepted, rejected, failed.)"""
    if report.http_status in _REFUSAL_STATUSES:
        return True
    return report.reason in (REFUSED_EARLIER, PROXY_REFUSED_EARLIER)


NO_CREDENTIALS = (
    "not sent: /import needs credentials; set mixpanel.service_account_username, "
    "service_account_secret and project_id (recommended), or api_secret, or token"
)
