"""Encoding records for the wire: compact JSON as bytes, the one place that knows how."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

import orjson

from mixpanel_core.errors import NotJSONError, Problem
from mixpanel_core.frozen import FrozenDict


def dumps(record: FrozenDict | dict[str, Any] | list[Any]) -> bytes:
    """Compact JSON of a record, or a list of them.

    Raises ``NotJSONError`` naming the field for an integer too long for Python to write
    (more than ``sys.get_int_max_str_digits()`` digits): the one JSON value that can fail.
    """
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


def _dumps_big_integers(record: FrozenDict | dict[str, Any] | list[Any]) -> bytes:
    # orjson refuses integers outside 64 bits, the one JSON value it cannot write; the
    # official SDK's ``json`` writes them as they are, and so must we. Same JSON, other
    # spelling only where the two differ harmlessly (``1e+16`` against ``1e16``).
    try:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    except ValueError:
        # Python writes no integer longer than its digit limit (4,300 by default), which
        # guards against conversions that take quadratic time. Said like any other value
        # JSON cannot carry: naming the field, rather than as an error from deep inside.
        field = _unwritable_integer(record, "") or "record"
        rule = f"an integer of more than {sys.get_int_max_str_digits()} digits cannot be written"
        raise NotJSONError([Problem(field, rule)]) from None


def _unwritable_integer(value: object, path: str) -> str | None:
    """The path (``properties.n``, ``items[2]``) of the first integer ``str`` refuses."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unwritable_integer(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _unwritable_integer(item, f"{path}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, int):
        try:
            str(value)
        except ValueError:
            return path
    return None


def dumps_array(encoded: Iterable[bytes]) -> bytes:
    """A JSON array of records that are already encoded."""
    return b"[" + b",".join(encoded) + b"]"


# Every byte to b" " but the digits, which become b"0": a run of twenty zeros in the result
# is an integer that may not fit 64 bits (2**64 has twenty digits). One C-speed pass.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
_LONG_DIGIT_RUN = b"0" * 20


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``ValueError`` on bad input (``NaN`` and the infinities included).

    orjson reads an integer beyond 64 bits as a float, which would round it; text that may
    hold one is parsed by ``json``, which keeps it exact as the official SDK wrote it.
    """
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGIT_RUN in raw.translate(_DIGITS_AS_ZEROS):
        return json.loads(raw, parse_constant=_refuse_constant)
    return orjson.loads(raw)


def _refuse_constant(name: str) -> Any:
    # orjson refuses NaN and the infinities; the fallback must not accept more than it.
    raise ValueError(f"{name} is not valid JSON")
