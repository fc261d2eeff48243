"""Encoding records for the wire: compact JSON as bytes, the one place that knows how."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from mixpanel_core.frozen import FrozenDict


def dumps(record: FrozenDict | dict[str, Any]) -> bytes:
    """Compact JSON of one record (messages hold only JSON values, so this cannot fail)."""
    # orjson returns its whole working buffer, at least 4 KiB, as the bytes object, whatever
    # the length of the JSON. Records wait by the thousand in queues, so each is copied into
    # an object of its own size (the join allocates exactly that): about 60 ns, where a
    # queue of 250-byte events otherwise held 4 KiB for each.
    return b"".join((orjson.dumps(record), b""))


def dumps_str(record: FrozenDict | dict[str, Any]) -> str:
    """``dumps`` as text, for consumers in the official style that take ``str``."""
    return orjson.dumps(record).decode()


def dumps_array(encoded: Iterable[bytes]) -> bytes:
    """A JSON array of records that are already encoded."""
    return b"[" + b",".join(encoded) + b"]"


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``orjson.JSONDecodeError`` (a ``ValueError``) on bad input."""
    return orjson.loads(data)
