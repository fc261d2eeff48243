"""Cutting messages into requests within Mixpanel's limits: written once, used by every sender.

The limits: at most 2,000 records a request (200 for ``/groups``) and a byte budget for the
uncompressed body (2 MiB by default). A single record bigger than the budget still gets a
request of its own, so Mixpanel, not this code, decides its fate (and it is reported).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from mixpanel_core.api_limits import (
    MAX_BODY_BYTES,
    MAX_GROUP_RECORDS_PER_REQUEST,
    MAX_RECORDS_PER_REQUEST,
)
from mixpanel_core.ingestion.encoding import EncodedPair, WireFormat, data_of, wire_format
from mixpanel_core.messages import Message

PairT = TypeVar("PairT", bound=EncodedPair)


def records_limit(endpoint: str, max_records: int = MAX_RECORDS_PER_REQUEST) -> int:
    """Records one request to ``endpoint`` may carry."""
    limit = min(max_records, MAX_RECORDS_PER_REQUEST)
    return min(limit, MAX_GROUP_RECORDS_PER_REQUEST) if endpoint == "groups" else limit


def split_encoded(
    items: Iterable[PairT], fmt: WireFormat, max_bytes: int, max_records: int
) -> Iterator[list[PairT]]:
    """Consecutive batches of ``items``, in order, each within both limits.

    Greedy: each batch is the longest run of the next records within both limits (at least
    one record). Senders run every record through this, so nothing here takes a Python
    step per record: the sizes are summed once, a batch is a slice, and where the byte
    budget cuts a batch short its end is found by bisection.
    """
    pending = items if isinstance(items, list) else list(items)
    if (
        len(pending) <= max_records
        and fmt.body_size(_data_bytes(pending), len(pending)) <= max_bytes
    ):
        # The usual case (a sender's take, a batch already cut): one request, one sum. A
        # copy, like every batch: results keep their batches, and the caller's list may change.
        if pending:
            yield pending[:]
        return
    # totals[i]: the bytes of the first i records.
    totals = [0, *itertools.accumulate(map(len, map(data_of, pending)))]
    start = 0
    while start < len(pending):
        end = _batch_end(fmt, totals, start, min(start + max_records, len(pending)), max_bytes)
        yield pending[start:end]
        start = end


def _data_bytes(items: list[EncodedPair]) -> int:
    return sum(map(len, map(data_of, items)))


def _batch_end(fmt: WireFormat, totals: list[int], start: int, end: int, max_bytes: int) -> int:
    """Where the batch from ``start`` ends: at ``end``, or sooner if the bytes run out."""

    def body_size(stop: int) -> int:
        return fmt.body_size(totals[stop] - totals[start], stop - start)

    if body_size(end) <= max_bytes:
        return end
    fitting = bisect.bisect_right(range(start + 1, end + 1), max_bytes, key=body_size)
    return start + max(1, fitting)


def batches(
    endpoint: str,
    messages: Sequence[Message],
    max_bytes: int = MAX_BODY_BYTES,
    max_records: int = MAX_RECORDS_PER_REQUEST,
) -> Iterator[list[Message]]:
    """Consecutive batches of ``messages`` for ``endpoint``, each within Mixpanel's limits.

    Sizes are measured on the body the ingestion client will send: ``/import``'s JSON array
    exactly; for the form-encoded endpoints, the JSON inside ``data=``, which escaping makes
    larger only where a record holds ``%&+=;#``, controls or non-ASCII text (a space becomes
    ``+``). The client splits a body that escaping took over ``max_bytes`` before sending it.
    """
    fmt = wire_format(endpoint)
    limit = records_limit(endpoint, max_records)
    for batch in split_encoded(fmt.encode_messages(messages), fmt, max_bytes, limit):
        yield [message for message, _ in batch]
