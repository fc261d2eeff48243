"""Frames: many messages packed into one ``bytes`` value, the unit that crosses the queue.

A frame is one line per message, ``ENDPOINT SPACE COMPACT_JSON``, joined by newlines. Compact
JSON never contains a raw newline (JSON escapes it inside strings), so splitting is exact, and
only bytes cross the process boundary: user objects are never pickled.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence

from mixpanel_core.messages import ENDPOINTS, Message, message_from_json


def encode_line(message: Message) -> bytes:
    """One message's line: its endpoint, a space, its wire record."""
    return _LINE_HEADS[message.endpoint] + message.json()


_LINE_HEADS = {name: name.encode() + b" " for name in ENDPOINTS}
"""Each endpoint's name and the space after it, encoded once rather than per line."""


def encode_frame(lines: Sequence[bytes]) -> bytes:
    """Join encoded lines into one frame."""
    return b"\n".join(lines)


def split_frame(frame: bytes) -> list[tuple[str, bytes]]:
    """``(endpoint, record JSON)`` for each line of ``frame``, in order."""
    return [(endpoint, r) for endpoint, records in records_by_endpoint(frame) for r in records]


def records_by_endpoint(frame: bytes) -> list[tuple[str, list[bytes]]]:
    """The records of ``frame`` as runs of one endpoint each, in order:
    ``[(endpoint, [record JSON, ...]), ...]``."""
    head = frame[: frame.find(b" ") + 1]  # the first line's endpoint and its space
    if frame.count(b"\n" + head) == frame.count(b"\n"):
        # The usual frame: every line is for one endpoint, so one split cuts out the
        # records (no line of compact JSON holds a newline), with no step per line.
        return [(_endpoint_name(head[:-1]), (b"\n" + frame).split(b"\n" + head)[1:])]
    lines = (line.partition(b" ") for line in frame.split(b"\n"))
    return [
        (_endpoint_name(endpoint), [record for _, _, record in run])
        for endpoint, run in itertools.groupby(lines, key=operator.itemgetter(0))
    ]


_NAMES = {name.encode(): name for name in ENDPOINTS}


def _endpoint_name(raw: bytes) -> str:
    # The four endpoint names, shared rather than decoded once per line.
    return _NAMES.get(raw) or raw.decode(errors="replace")


def decode_line(endpoint: str, record: bytes) -> Message:
    """Rebuild the message a line came from (keeping its JSON, so it is not encoded again);
    raises ``ValidationError`` on a bad record."""
    return message_from_json(endpoint, record)


def decode_frame(frame: bytes) -> list[Message]:
    """Every message of ``frame``, in order (none for an empty frame)."""
    if not frame:
        return []
    return [decode_line(endpoint, record) for endpoint, record in split_frame(frame)]
