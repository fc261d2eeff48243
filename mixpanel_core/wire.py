"""Encoding records for the wire: compact JSON as bytes, the one place that knows how."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

from mixpanel_core.frozen import FrozenDict


def dumps(record: FrozenDict | dict[str, Any]) -> bytes:
    """Compact JSON of one record (messages hold only JSON values, so this cannot fail)."""
    try:
        data = orjson.dumps(record)
    except TypeError:
        return _dumps_big_integers(record)
    # orjson returns its whole working buffer, at least 4 KiB, as the bytes object, whatever
    # the length of the JSON. Records wait by the thousand in queues, so each is copied into
    # an object of its own size (the join allocates exactly that): about 60 ns, where a
    # queue of 250-byte events otherwise held 4 KiB for each.
    return b"".join((data, b""))


def dumps_str(record: FrozenDict | dict[str, Any]) -> str:
    """``dumps`` as text, for consumers in the official style that take ``str``."""
    try:
        return orjson.dumps(record).decode()
    except TypeError:
        return _dumps_big_integers(record).decode()


def _dumps_big_integers(record: FrozenDict | dict[str, Any]) -> bytes:
    # orjson refuses integers outside 64 bits, the one JSON value it cannot write; the
    # official SDK's ``json`` writes them as they are, and so must we. Same JSON, other
    # spelling only where the two differ harmlessly (``1e+16`` against ``1e16``).
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def dumps_array(encoded: Iterable[bytes]) -> bytes:
    """A JSON array of records that are already encoded."""
    return b"[" + b",".join(encoded) + b"]"


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``orjson.JSONDecodeError`` (a ``ValueError``) on bad input."""
    return orjson.loads(data)
