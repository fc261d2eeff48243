"""Splitting a batch into halves: on a 413 or a body over the byte budget, and to narrow down
the records a ``status: 0`` refused without naming them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import attrs

from mixpanel_core.api_limits import MAX_FUTURE_SECONDS, MILLISECONDS_THRESHOLD
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion.call import Call
from mixpanel_core.ingestion.classify import Classification, Verdict
from mixpanel_core.ingestion.encoding import EncodedPair, message_in
from mixpanel_core.ingestion.outcomes import CredentialsRefusedError, Outcomes
from mixpanel_core.ingestion.result import Outcome
from mixpanel_core.messages import Endpoint

WHOLLY_REFUSED = 16
"""Records in a first half, every one refused by a ``status: 0``, that stop the second half
from being narrowed down (see ``halves``): so many refused together by chance is unlikely,
a batch refused whole (a wrong token, events too old) is what it usually means."""


REFUSED_IN_PART = "may have applied the valid ones"
"""The words of every reason ``refused_unnamed`` gives: what tells a record REJECTED with
the others of a request Mixpanel refused in part from one it refused by name (both may say
``maybe_applied``, the latter after an attempt that went unanswered)."""


def refused_in_part(reason: str | None) -> bool:
    """Whether ``reason`` is that of a record rejected by ``refused_unnamed``."""
    return reason is not None and REFUSED_IN_PART in reason


@attrs.frozen
class Split:
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
    resends: int = 0
    """With ``unnamed``: how often its records were sent again so far (the retries of the
    request the ``status: 0`` answered, and each half of it sent since), which
    ``max_retries`` bounds: each half is sent as a retry of its records."""


DeliverHalf = Callable[
    [list[EncodedPair], int, float | None, bool, Classification | None, int], list[Outcome]
]
"""Delivers a half as a batch of its own: ``(half, attempts, started, narrow, unnamed,
resends)``, as ``IngestionClient._deliver`` takes them."""


def halves(batch: list[EncodedPair], split: Split, deliver: DeliverHalf) -> list[Outcome]:
    """Each half of ``batch`` delivered as a batch of its own (and split again if need be).

    A refusal of the second half carries the outcomes of the first, already settled.

    Looking for the records a ``status: 0`` refused, a second half is not narrowed down
    when every record of the first half (two or more) was refused: a batch Mixpanel
    refuses whole (a wrong project token, say) would otherwise cost
    a request per record and as many again. Its second half, if refused too, is rejected
    whole, so such a batch of n records costs about 2·log2(n) requests. One refused
    record among valid ones never leaves a half wholly refused: every valid record is
    still found and ACCEPTED.
    """
    half = len(batch) // 2
    attempts, started, resends = split.attempts, split.started, split.resends
    first = deliver(batch[:half], attempts, started, True, split.unnamed, resends)
    narrow = not (
        split.unnamed is not None
        and half >= WHOLLY_REFUSED
        and all(o.status is DeliveryStatus.REJECTED for o in first)
    )
    try:
        second = deliver(batch[half:], attempts, started, narrow, split.unnamed, resends)
    except CredentialsRefusedError as error:
        error.settled[:0] = first
        raise
    return first + second


def split_or_reject_unnamed(
    outcomes: Outcomes,
    endpoint: Endpoint,
    batch: list[EncodedPair],
    answer: Classification,
    call: Call,
    attempts: int,
    started: float,
    narrow: bool,
    resends: int,
) -> list[Outcome] | Split:
    """``status: 0`` for several records: Mixpanel stored the valid ones, named none.

    Events that all carry an ``$insert_id`` and a ``time`` are sent again in halves until
    each refused record stands alone: Mixpanel counts a resent event once, so only the
    refused records end REJECTED, each with Mixpanel's reason, and the others ACCEPTED.
    Profile updates (``$add``, ``$append``...) would be applied twice, and events without an
    ``$insert_id`` or a ``time`` counted twice: those stay REJECTED together, saying that the
    valid ones may have been applied. So does a split that the retry budget or
    ``max_retries`` cuts short (``resends``: how often these records were sent again
    already; each half is one more), and a half not to be narrowed down (see ``halves``).
    """
    why = None
    if endpoint != "track":
        why = "resending would apply operations such as $add twice"
    elif not all(_has_insert_id(endpoint, item) for item in batch):
        why = "resending events without an $insert_id would count them twice"
    elif not all(_keeps_its_time(endpoint, item) for item in batch):
        why = (
            "resending events without a time, or dated more than an hour ahead, would count "
            "them twice (Mixpanel gives each copy the time it arrives, and the time is part of "
            "what it deduplicates on)"
        )
    elif not call.policy.may_retry(resends + 1):
        # Before the budget: the drop-ins' retry_limit=0 also sets a budget of 0, and it is
        # the limit the user set, not a budget, that stops the search.
        why = retry_limit_reached(call.policy.max_retries)
    elif call.budget_left(started) <= 0:
        # Past the deadline instead, the halves are reported FAILED, not sent: they are
        # sent again later rather than rejected unexamined.
        why = "the retry budget ran out before the refused records were found"
    elif not narrow:
        why = (
            "the records before them in the request were all refused too, so these were "
            "not sent again one by one (a wrong project token refuses every record)"
        )
    if why is None:
        return Split(attempts, started, unnamed=answer, resends=resends)
    return [refused_unnamed(outcomes, endpoint, batch, answer, attempts, why)]


def refused_unnamed(
    outcomes: Outcomes,
    endpoint: Endpoint,
    batch: list[EncodedPair],
    answer: Classification,
    attempts: int,
    why: str,
    part: bool = False,
) -> Outcome:
    """``batch``, refused by a ``status: 0`` that named none of its records, REJECTED
    whole: ``why`` says why its refused records were not looked for. ``part``: ``batch`` is
    a half of the request so refused, not sent again (see ``out_of_budget``).

    Mixpanel keeps the valid records of such a request, so each of several may have been
    applied (``maybe_applied``, which is what a replay of dead letters is screened by); a
    record alone in its request was the one refused, but not one of a half."""
    sent = "this record was" if len(batch) == 1 else f"these {len(batch)} records were"
    request = f"the request {sent} sent in" if part else "this request"
    count = "" if part else f" {len(batch)}"
    reason = (
        f"{answer.reason} (Mixpanel refused some of the{count} records of {request} and "
        f"{REFUSED_IN_PART}; which cannot be told, as {why})"
    )
    return outcomes.of(
        endpoint,
        batch,
        DeliveryStatus.REJECTED,
        reason,
        answer.http_status,
        attempts,
        maybe_applied=part or len(batch) > 1,
    )


def retry_limit_reached(limit: int | None) -> str:
    """Why ``max_retries`` (``limit``) stopped the search for the records a ``status: 0``
    refused: named by the limit, not by an option (a drop-in user set it as
    ``retry_limit``)."""
    if not limit:
        return (
            "finding them would take sending the records again, which the limit of 0 "
            "retries does not allow"
        )
    retries = "retry" if limit == 1 else "retries"
    return f"the limit of {limit} {retries} was reached before the refused records were found"


def beyond_retry_limit(
    outcomes: Outcomes,
    endpoint: Endpoint,
    batch: list[EncodedPair],
    unnamed: Classification,
    call: Call,
    attempts: int,
    resends: int,
) -> Outcome | None:
    """``batch``, a half of the ``status: 0`` ``unnamed``, not sent when sending it would be
    resend number ``resends`` of its records, beyond ``max_retries``; else ``None``."""
    if call.policy.may_retry(resends):
        return None
    why = retry_limit_reached(call.policy.max_retries)
    return out_of_budget(outcomes, endpoint, batch, unnamed, attempts, why)


def out_of_budget(
    outcomes: Outcomes,
    endpoint: Endpoint,
    batch: list[EncodedPair],
    answer: Classification,
    attempts: int,
    why: str = "the retry budget ran out before the refused records were found",
) -> Outcome:
    """``batch`` not sent (again): the retry budget (or ``why``) ran out after ``answer``."""
    if answer.verdict is Verdict.UNNAMED:  # a half of a status 0 being narrowed down
        return refused_unnamed(outcomes, endpoint, batch, answer, attempts, why, part=True)
    return outcomes.failed(endpoint, batch, answer, attempts)


# Mixpanel counts an event sent again once only when it has the same name, distinct_id, time
# and $insert_id: one without an $insert_id, or without a time or dated more than an hour
# ahead (stamped on arrival, so each copy has its own), is counted again. Read only after a
# ``status: 0``, so rebuilding a message costs little.


def counted_once(endpoint: Endpoint, batch: Sequence[EncodedPair]) -> bool:
    """Whether Mixpanel counts the records of ``batch`` once however often they arrive:
    events (``/track``, ``/import``) that all carry an ``$insert_id`` and keep their own
    ``time``. A profile or group update sent twice is applied twice. Reads every record:
    for the rare request that may be sent again at once (``HttpSession.post``)."""
    return endpoint in ("track", "import") and all(
        _has_insert_id(endpoint, item) and _keeps_its_time(endpoint, item) for item in batch
    )


def _has_insert_id(endpoint: Endpoint, item: EncodedPair) -> bool:
    message = message_in(endpoint, item)
    return message is not None and message.insert_id is not None


def _keeps_its_time(endpoint: Endpoint, item: EncodedPair) -> bool:
    """Whether Mixpanel keeps the event's own ``time``: it stamps one more than an hour ahead
    with its arrival time too. (A time that is no number is refused, so never counted.)"""
    message = message_in(endpoint, item)
    properties = None if message is None else message.record.get("properties")
    value = properties.get("time") if isinstance(properties, Mapping) else None
    if value is None:
        return False
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    latest = time.time() + MAX_FUTURE_SECONDS
    # Compared without dividing: an integer of hundreds of digits (JSON has no bound) is
    # beyond a float, and dividing it raised OverflowError out of the send (review R60 F2).
    if value > MILLISECONDS_THRESHOLD:
        return value <= latest * 1000
    return value <= latest
