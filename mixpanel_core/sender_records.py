"""The records a ``BackgroundSender`` queues: what each holds and counts against the byte bound,
and how a take of them is grouped by endpoint, matched against what was settled, and turned
back into messages."""

from __future__ import annotations

import collections
import operator
from collections.abc import Callable, Sequence
from typing import TypeVar

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion import EncodedPair, Outcome
from mixpanel_core.ingestion.encoding import message_in
from mixpanel_core.messages import Endpoint, Message

T = TypeVar("T")
Record = tuple[Endpoint, Message | None, bytes]
"""What the sender's queue holds per message: its endpoint, the message itself only when it
is kept (see ``BackgroundSender.submit``), and its JSON."""

RECORD_OVERHEAD = 160
"""Bytes the queue's own objects take per record (its tuple and the bytes object's header)."""


def held_bytes(data: bytes, with_message: bool) -> int:
    """Approximate memory one queued record holds: its JSON and the queue's own objects,
    plus, when the message is kept, its frozen record (about eight times its JSON size,
    measured on typical events).

    Counting this rather than the JSON alone makes ``max_queue_bytes`` a memory bound."""
    return 9 * len(data) + 512 if with_message else len(data) + RECORD_OVERHEAD


def by_endpoint(records: list[Record]) -> list[tuple[Endpoint, list[EncodedPair]]]:
    """``records`` grouped by endpoint, each group in queue order, as the client's pairs."""
    endpoints = set(map(endpoint_of, records))
    if len(endpoints) == 1:
        # The usual take: one endpoint. The pairs are made by C iterators, no step per record.
        pairs = list(zip(map(message_of, records), map(record_data, records), strict=True))
        return [(endpoints.pop(), pairs)]
    groups: dict[Endpoint, list[EncodedPair]] = {}
    for endpoint, message, data in records:
        group = groups.get(endpoint)
        if group is None:
            group = groups[endpoint] = []
        group.append((message, data))
    return list(groups.items())


endpoint_of = operator.itemgetter(0)
message_of = operator.itemgetter(1)
record_data = operator.itemgetter(2)
pair_data = operator.itemgetter(1)


def unsettled(items: list[T], settled: Sequence[Outcome], data: Callable[[T], bytes]) -> list[T]:
    """``items`` (records or pairs) but those of ``settled``, which must all be among them.

    Matched by the identity of their JSON, each once: the same message sent twice shares it.
    """
    count = sum(len(outcome.items) for outcome in settled)
    if count == len(items):
        return []  # the usual take: one request, settled whole in one announcement
    if not count:
        return items
    gone = collections.Counter(id(pair[1]) for outcome in settled for pair in outcome.items)
    kept: list[T] = []
    for item in items:
        key = id(data(item))
        if gone[key]:
            gone[key] -= 1
        else:
            kept.append(item)
    return kept


def apart(items: list[Record], part: list[Record]) -> tuple[list[Record], list[Record]]:
    """``items`` but those of ``part``, and those of ``part``, which must all be among them.

    Matched by the identity of their JSON, each once, as ``unsettled`` matches them.
    """
    if not part:
        return items, []
    among = collections.Counter(id(data) for _, _, data in part)
    rest: list[Record] = []
    found: list[Record] = []
    for item in items:
        key = id(item[2])
        if among[key]:
            among[key] -= 1
            found.append(item)
        else:
            rest.append(item)
    return rest, found


def rebuilt_messages(records: list[Record]) -> list[Message | None]:
    """The message of each record, rebuilt from its JSON where it was not kept."""
    return [message_in(endpoint, (message, data)) for endpoint, message, data in records]


def messages_of(records: list[Record]) -> list[Message]:
    """The messages of ``records`` (see ``rebuilt_messages``), leaving out JSON that is no
    record."""
    return [message for message in rebuilt_messages(records) if message is not None]


def failed_messages(outcomes: Sequence[Outcome]) -> list[Message]:
    """The messages of the FAILED ones of ``outcomes`` (rebuilt where not kept)."""
    failed = DeliveryStatus.FAILED
    reports = [r for o in outcomes if o.status is failed for r in o.reports()]
    return [r.message for r in reports if r.message is not None]
