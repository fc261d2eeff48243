"""Frames: many messages packed into one ``bytes`` value, the unit that crosses the queue.

A frame is one line per message, ``ENDPOINT SPACE COMPACT_JSON``, joined by newlines. Compact
JSON never contains a raw newline (JSON escapes it inside strings), so splitting is exact, and
only bytes cross the process boundary: user objects are never pickled.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from mixpanel_core.messages import Message, message_from_json


def encode_line(message: Message) -> bytes:
    """One message's line: its endpoint, a space, its wire record."""
    return message.endpoint.encode() + b" " + message.json()


def encode_frame(lines: Sequence[bytes]) -> bytes:
    """Join encoded lines into one frame."""
    return b"\n".join(lines)


def split_frame(frame: bytes) -> Iterator[tuple[str, bytes]]:
    """``(endpoint, record JSON)`` for each line of ``frame``."""
    for line in frame.split(b"\n"):
        endpoint, _, record = line.partition(b" ")
        yield endpoint.decode(), record


def decode_line(endpoint: str, record: bytes) -> Message:
    """Rebuild the message a line came from (keeping its JSON, so it is not encoded again);
    raises ``ValidationError`` on a bad record."""
    return message_from_json(endpoint, record)


def decode_frame(frame: bytes) -> list[Message]:
    """Every message of ``frame``, in order."""
    return [decode_line(endpoint, record) for endpoint, record in split_frame(frame)]
