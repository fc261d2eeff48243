"""Cutting messages into requests within Mixpanel's limits: written once, used by every sender.

The limits: at most 2,000 records a request (200 for ``/groups``) and a byte budget for the
uncompressed body (2 MiB by default). A single record bigger than the budget still gets a
request of its own, so Mixpanel, not this code, decides its fate (and it is reported).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from mixpanel_core.api_limits import (
    MAX_BODY_BYTES,
    MAX_GROUP_RECORDS_PER_REQUEST,
    MAX_RECORDS_PER_REQUEST,
)
from mixpanel_core.ingestion.encoding import Encoded, WireFormat, wire_format
from mixpanel_core.messages import Message


def records_limit(endpoint: str, max_records: int = MAX_RECORDS_PER_REQUEST) -> int:
    """Records one request to ``endpoint`` may carry."""
    limit = min(max_records, MAX_RECORDS_PER_REQUEST)
    return min(limit, MAX_GROUP_RECORDS_PER_REQUEST) if endpoint == "groups" else limit


class Batcher:
    """Accumulates encoded records for one endpoint until the next one would not fit.

    ``fits(item)`` says whether ``item`` can join the current batch; ``add`` appends it;
    ``take`` hands the batch over and starts a new one.
    """

    def __init__(self, fmt: WireFormat, max_bytes: int, max_records: int) -> None:
        self.format = fmt
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.items: list[Encoded] = []
        self._data_bytes = 0

    def __len__(self) -> int:
        return len(self.items)

    @property
    def body_size(self) -> int:
        return self.format.body_size(self._data_bytes, len(self.items))

    @property
    def full(self) -> bool:
        return len(self.items) >= self.max_records

    def fits(self, item: Encoded) -> bool:
        if not self.items:
            return True
        if len(self.items) >= self.max_records:
            return False
        size = self.format.body_size(self._data_bytes + len(item.data), len(self.items) + 1)
        return size <= self.max_bytes

    def add(self, item: Encoded) -> None:
        self.items.append(item)
        self._data_bytes += len(item.data)

    def take(self) -> list[Encoded]:
        items, self.items, self._data_bytes = self.items, [], 0
        return items


def split_encoded(
    items: Iterable[Encoded], fmt: WireFormat, max_bytes: int, max_records: int
) -> Iterator[list[Encoded]]:
    """Consecutive batches of ``items``, in order, each within both limits."""
    batcher = Batcher(fmt, max_bytes, max_records)
    for item in items:
        if not batcher.fits(item):
            yield batcher.take()
        batcher.add(item)
    if batcher.items:
        yield batcher.take()


def batches(
    endpoint: str,
    messages: Sequence[Message],
    max_bytes: int = MAX_BODY_BYTES,
    max_records: int = MAX_RECORDS_PER_REQUEST,
) -> Iterator[list[Message]]:
    """Consecutive batches of ``messages`` for ``endpoint``, each within Mixpanel's limits.

    Sizes are measured on the body the ingestion client will send (``/import`` as a JSON
    array, the other endpoints form-encoded).
    """
    fmt = wire_format(endpoint)
    limit = records_limit(endpoint, max_records)
    for batch in split_encoded(fmt.encode_messages(messages), fmt, max_bytes, limit):
        yield [item.message for item in batch]
