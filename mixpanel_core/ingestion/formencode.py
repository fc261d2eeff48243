"""Form-encoding of ``data=`` bodies for ``/track``, ``/engage`` and ``/groups``, fast.

A form parser splits on ``&`` (and, in older ones, ``;``), reads ``=`` and ``+`` specially and
decodes ``%XX``; every other printable ASCII byte stands for itself. So only those bytes,
spaces, controls and non-ASCII bytes are escaped: the decoded value is exactly the JSON, as
with the official SDK's full escaping, but a 2,000-event body needs a handful of C-speed scans
instead of one ``bytes.replace`` pass per punctuation character JSON uses (measured: 7 ms a
batch down to well under 1 ms), and the body does not grow by half. A space becomes ``+``, as
the official SDK writes it (``urlencode``): the commonest byte to escape in text, it then adds
nothing to the body's size, which batches are cut by before it is escaped.
"""

from __future__ import annotations

import re

# ``%`` first, so the escapes written later are not escaped again; the space after ``+``, so
# the ``+`` it becomes is not.
_SEPARATORS = (*((bytes([c]), b"%%%02X" % c) for c in b"%&+=;#"), (b" ", b"+"))
_PRINTABLE = bytes(range(0x21, 0x7F))
_UNUSUAL = re.compile(rb"[\x00-\x20\x7f-\xff]")
_CONTROLS = tuple(bytes([c]) for c in (*range(0x20), 0x7F))


def _escape(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match.group()[0]


def quote(data: bytes) -> bytes:
    """Percent-encode what a form parser would misread; the rest stays as it is."""
    for char, escape in _SEPARATORS:
        if char in data:
            data = data.replace(char, escape)
    # Compact JSON has no controls and, mostly, no non-ASCII: a few scans tell.
    if _has_unusual(data):
        data = _UNUSUAL.sub(_escape, data)
    return data


def needs_quoting(data: bytes, start: int = 0, end: int | None = None) -> bool:
    """Whether ``quote`` would change ``data[start:end]``, found without copying it.

    For a body built around its records: the records are checked where they lie. Bytes
    outside the range are only looked at for non-ASCII, so ASCII framing never counts.
    """
    stop = len(data) if end is None else end
    if any(data.find(char, start, stop) != -1 for char, _ in _SEPARATORS):
        return True
    return _has_unusual(data, start, stop)


def _has_unusual(data: bytes, start: int = 0, end: int | None = None) -> bool:
    # Searches rather than one ``translate``: that would allocate a second buffer the size
    # of a 2 MiB body, which costs more than all of these scans together.
    stop = len(data) if end is None else end
    return not data.isascii() or any(data.find(c, start, stop) != -1 for c in _CONTROLS)


def form_body(data: bytes, fields: bytes = b"&verbose=1&ip=0") -> bytes:
    """``data=<quoted JSON>`` followed by the fixed fields the official SDK sends."""
    return b"data=" + quote(data) + fields
