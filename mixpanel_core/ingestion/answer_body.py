"""An answer's body, bounded: read to ``MAX_ANSWER_BYTES`` at most, and decoded (as its
``Content-Encoding`` says) to ``MAX_ANSWER_BYTES`` at most.

Mixpanel's answers are small: a few hundred bytes, a few MB for a strict-mode 400 listing
every problem of every record of a batch (the emulator lists 5 MB for 2,000 records with a
dozen problems each). A longer one comes from something on the way (a proxy's page, a broken
server), and read whole an endless one took the process to gigabytes of memory, a gzip bomb
too (a MiB of gzip is a GiB of zeros). The bound is kept while reading, inside http.client
(``request_watch._AnswerNotedResponse.read``), where urllib3 still holds the connection: it
closes it, rather than give it back to the pool with the rest of the body still to come, as
the answer to the next request on it. Decoding is done here rather than by urllib3, which
decodes a whole body at once without a bound.
"""

from __future__ import annotations

import zlib

import urllib3.exceptions

MAX_ANSWER_BYTES = 32 * 1024 * 1024
"""The longest answer body read, and the longest once decoded: ample for any answer of
Mixpanel's (16 KB for each record of a 2,000-record batch), a bound to what anything else
takes of memory."""

MAX_GZIP_MEMBERS = 16
"""The most gzip members decoded (a server writes one): each one past the first costs a copy
of the rest of the body, and a body of many thousand tiny members took seconds."""


class AnswerTooLongError(Exception):
    """An answer's body is longer than ``MAX_ANSWER_BYTES``, as sent or once decoded.

    Not an ``http.client.HTTPException``, which urllib3 wraps as a connection broken: it
    comes out of urllib3 as it is (its connection closed), for ``errors_sorted`` to say so.
    """


def too_long(status: int, decoded: bool) -> AnswerTooLongError:
    once = " once decoded" if decoded else ""
    return AnswerTooLongError(
        f"the answer (HTTP {status}) has a body longer than {MAX_ANSWER_BYTES} bytes{once},"
        " which no answer of Mixpanel's has: it came from something on the way (a proxy,"
        " a broken server)"
    )


_GZIP = zlib.MAX_WBITS | 16
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS
_GZIP_MAGIC = b"\x1f\x8b"


def decoded(body: bytes, content_encoding: str | None, status: int) -> bytes:
    """``body`` decoded as ``content_encoding`` says (codings are undone last first).

    gzip and deflate, the codings a proxy may apply unasked (no request of ours asks for
    any): a body in another coding is left as it is, as urllib3 does with codings it does
    not know. Raises ``urllib3.exceptions.DecodeError`` for a body that does not decode or
    is cut short, ``AnswerTooLongError`` for one longer than ``MAX_ANSWER_BYTES`` once decoded
    (``status`` is the answer's, for its text).
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    for coding in reversed([c for c in codings if c and c != "identity"]):
        if not body:
            break  # an empty body in any coding (a proxy's 503 with no page) is empty
        if coding in ("gzip", "x-gzip"):
            body = _gunzipped(body, status)
        elif coding == "deflate":
            # Meant to be zlib-wrapped; some servers send raw deflate (urllib3 reads both).
            wbits = _ZLIB if _zlib_header(body) else _RAW_DEFLATE
            body = _inflated(body, wbits, coding, status)[0]
        else:
            break
    return body


def _gunzipped(body: bytes, status: int) -> bytes:
    """``body`` un-gzipped: its first member, then those after it, as urllib3 reads them
    (whatever follows that is not a whole member, zeros of padding say, is left)."""
    out, rest = _inflated(body, _GZIP, "gzip", status)
    for _ in range(MAX_GZIP_MEMBERS - 1):
        if not rest.startswith(_GZIP_MAGIC):
            return out
        try:
            more, rest = _inflated(rest, _GZIP, "gzip", status, len(out))
        except urllib3.exceptions.DecodeError:
            return out
        out += more
    if rest.startswith(_GZIP_MAGIC):
        raise urllib3.exceptions.DecodeError(f"gzip: more than {MAX_GZIP_MEMBERS} members")
    return out


def _zlib_header(body: bytes) -> bool:
    """Whether ``body`` starts as zlib-wrapped deflate does (RFC 1950: method 8, the two
    bytes a multiple of 31)."""
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def _inflated(
    body: bytes, wbits: int, coding: str, status: int, before: int = 0
) -> tuple[bytes, bytes]:
    """One stream of ``body`` inflated, at most ``MAX_ANSWER_BYTES`` less ``before`` (what
    earlier streams gave), and what follows it in ``body``."""
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, MAX_ANSWER_BYTES + 1 - before)
    except zlib.error as exc:
        raise urllib3.exceptions.DecodeError(f"{coding}: {exc}") from exc
    if before + len(out) > MAX_ANSWER_BYTES:
        raise too_long(status, decoded=True)
    if not inflater.eof:
        raise urllib3.exceptions.DecodeError(f"{coding}: the body is cut short")
    return out, inflater.unused_data
