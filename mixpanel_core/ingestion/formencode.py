"""Form-encoding of ``data=`` bodies for ``/track``, ``/engage`` and ``/groups``, fast.

``urllib.parse.quote`` walks the body a byte at a time in Python, which costs more than
encoding the JSON itself for a 2,000-record batch. JSON text is almost all ASCII with a
handful of distinct punctuation characters, so one C-speed ``bytes.replace`` per character
that occurs gives the same, fully escaped result several times faster.
"""

from __future__ import annotations

import re

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
# ``%`` first, so the escapes written later are not escaped again.
_ASCII_ESCAPES = tuple(
    (bytes([c]), b"%%%02X" % c)
    for c in [ord("%"), *(c for c in range(128) if c not in _UNRESERVED and c != ord("%"))]
)
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")


def _escape_high(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match.group()[0]


def quote(data: bytes) -> bytes:
    """Percent-encode every byte outside ``A-Za-z0-9_.-~`` (what ``quote(safe='')`` does)."""
    for char, escape in _ASCII_ESCAPES:
        if char in data:
            data = data.replace(char, escape)
    if not data.isascii():
        data = _HIGH_BYTE.sub(_escape_high, data)
    return data


def form_body(data: bytes, fields: bytes = b"&verbose=1&ip=0") -> bytes:
    """``data=<quoted JSON>`` followed by the fixed fields the official SDK sends."""
    return b"data=" + quote(data) + fields
