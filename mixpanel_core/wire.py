"""Encoding records for the wire: compact JSON as bytes, the one place that knows how."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from mixpanel_core.frozen import FrozenDict


def dumps(record: FrozenDict | dict[str, Any]) -> bytes:
    """Compact JSON of one record (messages hold only JSON values, so this cannot fail)."""
    return orjson.dumps(record)


def dumps_str(record: FrozenDict | dict[str, Any]) -> str:
    """``dumps`` as text, for consumers in the official style that take ``str``."""
    return orjson.dumps(record).decode()


def dumps_array(encoded: Iterable[bytes]) -> bytes:
    """A JSON array of records that are already encoded."""
    return b"[" + b",".join(encoded) + b"]"


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``orjson.JSONDecodeError`` (a ``ValueError``) on bad input."""
    return orjson.loads(data)
