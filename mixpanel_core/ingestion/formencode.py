"""Form-encoding of ``data=`` bodies for ``/track``, ``/engage`` and ``/groups``, fast.

A form parser splits on ``&`` (and, in older ones, ``;``), reads ``=`` and ``+`` specially and
decodes ``%XX``; every other printable ASCII byte stands for itself. So only those bytes,
spaces, controls and non-ASCII bytes are escaped: the decoded value is exactly the JSON, as
with the official SDK's full escaping, but a 2,000-event body needs a handful of C-speed scans
instead of one ``bytes.replace`` pass per punctuation character JSON uses (measured: 7 ms a
batch down to well under 1 ms), and the body does not grow by half.
"""

from __future__ import annotations

import re

# ``%`` first, so the escapes written later are not escaped again.
_SEPARATORS = tuple((bytes([c]), b"%%%02X" % c) for c in b"%&+=;# ")
_PRINTABLE = bytes(range(0x21, 0x7F))
_UNUSUAL = re.compile(rb"[\x00-\x20\x7f-\xff]")


def _escape(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match.group()[0]


def quote(data: bytes) -> bytes:
    """Percent-encode what a form parser would misread; the rest stays as it is."""
    for char, escape in _SEPARATORS:
        if char in data:
            data = data.replace(char, escape)
    # Compact JSON has no controls and, mostly, no non-ASCII: one pass tells.
    if data.translate(None, _PRINTABLE):
        data = _UNUSUAL.sub(_escape, data)
    return data


def form_body(data: bytes, fields: bytes = b"&verbose=1&ip=0") -> bytes:
    """``data=<quoted JSON>`` followed by the fixed fields the official SDK sends."""
    return b"data=" + quote(data) + fields
