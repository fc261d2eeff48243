"""Encoding records for the wire: compact JSON as bytes, the one place that knows how."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable
from typing import Any

import orjson

from mixpanel_core.errors import NotJSONError, Problem
from mixpanel_core.frozen import FrozenDict


def dumps(record: FrozenDict | dict[str, Any] | list[Any]) -> bytes:
    """Compact JSON of a record, or a list of them, in UTF-8.

    Raises ``NotJSONError`` naming the field and saying what cannot be written: an integer
    too long for Python to write (more than ``sys.get_int_max_str_digits()`` digits), or a
    value or key that is no JSON at all (which a frozen record never holds).
    """
    try:
        data = orjson.dumps(record)
    except TypeError:
        # orjson refuses JSON the official SDK writes: chiefly integers beyond 64 bits, and
        # strings holding a lone surrogate ("file\udcff.txt", as os.fsdecode gives for a byte
        # that is not UTF-8). ``json`` writes them; the surrogate, which UTF-8 cannot carry,
        # as the escape ``\udcff`` the official SDK sends (backslashreplace writes exactly
        # that, and surrogates are all UTF-8 refuses).
        return _json_text(record, _UTF8).encode("utf-8", "backslashreplace")
    # orjson returns its whole working buffer, at least 4 KiB, as the bytes object, whatever
    # the length of the JSON. Records wait by the thousand in queues, so each is copied into
    # an object of its own size (the join allocates exactly that): about 60 ns, where a
    # queue of 250-byte events otherwise held 4 KiB for each.
    return b"".join((data, b""))


def dumps_str(record: FrozenDict | dict[str, Any]) -> str:
    """``dumps`` as text: the fast form, for readers that only parse it (not the official
    SDK's text: see ``dumps_official``)."""
    return dumps(record).decode()


def dumps_official(record: FrozenDict | dict[str, Any]) -> str:
    """The text the official SDK writes for ``record``: ``json_dumps``, that is
    ``json.dumps(record, separators=(",", ":"))`` (ASCII, ``\\u00fc``, ``1e-07``).

    For code of the user's that compares or signs the text its consumer receives. Slower than
    ``dumps``; raises ``NotJSONError`` as it does.
    """
    return _json_text(record, _OFFICIAL)


# Built once: ``json.dumps`` with options builds an encoder per call. Encoding keeps no state
# in the encoder, so one serves every thread. NaN and the infinities are refused rather than
# written as the bare ``NaN`` no JSON parser takes (frozen records never hold them).
_OFFICIAL = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_UTF8 = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _json_text(record: FrozenDict | dict[str, Any] | list[Any], encoder: json.JSONEncoder) -> str:
    try:
        return encoder.encode(record)
    except RecursionError:
        raise NotJSONError([Problem("record", "is nested too deeply to be written")]) from None
    except (TypeError, ValueError) as exc:
        # Said like any other value JSON cannot carry: naming the field, rather than as an
        # error from deep inside ``json``.
        found = _unwritable(record, "")
        problem = Problem(*found) if found else Problem("record", f"cannot be written: {exc}")
        raise NotJSONError([problem]) from None


_KEY_TYPES = (str, int, float, bool, type(None))


def _unwritable(value: object, path: str) -> tuple[str, str] | None:
    """The path (``properties.n``, ``items[2]``) of the first value ``json`` cannot write,
    and why; ``None`` if there is none."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _KEY_TYPES):
                return path or "record", f"a key of type {type(key).__name__} cannot be written"
            found = _unwritable(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _unwritable(item, f"{path}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, int):  # bool too, which always writes
        try:
            str(value)
        except ValueError:
            limit = sys.get_int_max_str_digits()
            return path, f"an integer of more than {limit} digits cannot be written"
    elif isinstance(value, float):
        if not math.isfinite(value):
            return path, f"{value} cannot be written: JSON has no NaN or infinities"
    elif not isinstance(value, str) and value is not None:
        return path, f"a {type(value).__name__} cannot be written as JSON"
    return None


def dumps_array(encoded: Iterable[bytes]) -> bytes:
    """A JSON array of records that are already encoded."""
    return b"[" + b",".join(encoded) + b"]"


# The shape of JSON text for finding integers that may not fit 64 bits: the digits become b"0",
# the minus is kept, the bytes a number may follow in JSON (``[``, ``:``, ``,``, whitespace)
# become b" ", and every other byte b"x". A number is twenty digits or more (2**64 has twenty)
# or a minus and nineteen (-2**63 - 1) after a b" " or at the start; a run after an b"x" is
# inside a string (a hex id: most 2,000-record batches of uuid4 ids had a run of twenty
# digits somewhere, and were read by ``json``, three times slower). One C-speed pass, then
# one search in the usual case: a text without a run of nineteen digits holds no such number.
_NUMBER_MAY_FOLLOW = b"[:, \t\r\n"
_SHAPE = bytes(
    0x30 if 0x30 <= c <= 0x39 else c if c == 0x2D else 0x20 if c in _NUMBER_MAY_FOLLOW else 0x78
    for c in range(256)
)
_NINETEEN_DIGITS = b"0" * 19
_LONG_NUMBERS = (b"0" * 20, b"-" + _NINETEEN_DIGITS)


def _may_hold_long_integer(raw: bytes) -> bool:
    """Whether ``raw`` may hold an integer orjson would read as a float (beyond 64 bits)."""
    shape = raw.translate(_SHAPE)
    if _NINETEEN_DIGITS not in shape:
        return False
    return shape.startswith(_LONG_NUMBERS) or any(b" " + n in shape for n in _LONG_NUMBERS)


# A ``\u`` escape of a surrogate (D800-DFFF): the one thing in JSON orjson refuses to read
# that ``json`` reads, when it stands alone (``\udcff``, as json.dumps writes a lone one).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``ValueError`` on bad input (``NaN`` and the infinities included).

    orjson reads an integer beyond 64 bits as a float, which would round it, and refuses a
    lone surrogate escape (``"file\\udcff.txt"``, which the official SDK writes for a string
    from ``os.fsdecode``): text that may hold either is parsed by ``json``, which keeps the
    integer exact and the string as the official SDK's caller had it.
    """
    raw = data.encode() if isinstance(data, str) else data
    if _may_hold_long_integer(raw):
        return _json_loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Looked for only here: bad input is rare, text with surrogate escapes rarer.
        if _SURROGATE_ESCAPE.search(raw) is None:
            raise
    return _json_loads(raw)


RECORD_DEPTH_LIMIT = 100
"""Levels of nesting a record read from a file, a dead letter or a Kafka topic may have
(``loads_record``).

Mixpanel takes properties nested 3 levels deep at most, so no deeper record is ever delivered;
one nested hundreds of levels deep cannot even be written back to a rejected file (orjson
writes 254 levels, and ``json`` runs out of stack a few hundred after), so it is refused as
it is read, as text that is not JSON is."""


class NestedTooDeeplyError(ValueError):
    """JSON nested more than ``RECORD_DEPTH_LIMIT`` levels deep, refused by ``loads_record``."""

    def __init__(self) -> None:
        super().__init__(
            f"nested more than {RECORD_DEPTH_LIMIT} levels deep (Mixpanel takes properties "
            "nested 3 levels deep at most)"
        )


def loads_record(data: bytes | str) -> Any:
    """``loads``, refusing JSON nested more than ``RECORD_DEPTH_LIMIT`` levels deep with a
    ``NestedTooDeeplyError`` (a ``ValueError``, as for text that is not JSON)."""
    value = loads(data)
    check_depth(value, data)
    return value


def check_depth(value: Any, text: bytes | str) -> None:
    """Raise ``NestedTooDeeplyError`` when ``value``, parsed from ``text`` (or from a text
    that holds it), is nested more than ``RECORD_DEPTH_LIMIT`` levels deep."""
    # Counting the brackets first keeps the walk off the usual record, which has a few.
    brackets = (
        text.count(b"[") + text.count(b"{")
        if isinstance(text, bytes)
        else (text.count("[") + text.count("{"))
    )
    if brackets > RECORD_DEPTH_LIMIT and nested_deeper_than(value, RECORD_DEPTH_LIMIT):
        raise NestedTooDeeplyError


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether parsed JSON ``value`` holds objects or arrays more than ``limit`` levels deep.

    Level by level, not by recursion: the point is to look at values too deep to recurse into.
    """
    level = [value] if type(value) is dict or type(value) is list else []
    for _ in range(limit):
        if not level:
            return False
        level = [
            item
            for container in level
            for item in (container.values() if type(container) is dict else container)
            if type(item) is dict or type(item) is list
        ]
    return bool(level)


def _json_loads(raw: bytes) -> Any:
    # Decoded here, strictly, as orjson does: ``json`` would take surrogates encoded in the
    # bytes themselves, which is no UTF-8.
    try:
        return json.loads(raw.decode(), parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        # orjson's own depth limit is a ValueError, which every reader handles as bad input
        # (the forwarder dead-letters the record); ``json`` must not fail differently.
        raise ValueError("JSON nested too deeply to read") from None


def _refuse_constant(name: str) -> Any:
    # orjson refuses NaN and the infinities; the fallback must not accept more than it.
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # ``json`` reads 1e400 as infinity, which orjson refuses and no record may hold.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is too large for a JSON number")
    return value
