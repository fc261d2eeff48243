"""An answer's body, bounded: read to ``MAX_ANSWER_BYTES`` at most, and decoded (as its
``Content-Encoding`` says) to ``MAX_ANSWER_BYTES`` at most.

Mixpanel's answers are small: a few hundred bytes, a few hundred KB for a strict-mode 400
naming every record of a 2,000-record batch. A longer one comes from something on the way
(a proxy's page, a broken server), and read whole an endless one took the process to
gigabytes of memory, a gzip bomb too (4 MiB of gzip is 4 GB of zeros). The bound is kept
while reading, inside http.client (``request_watch._AnswerNotedResponse.read``), where
urllib3 still holds the connection: it closes it, rather than give it back to the pool with
the rest of the body still to come, as the answer to the next request on it. Decoding is
done here rather than by urllib3, which decodes a whole body at once without a bound.
"""

from __future__ import annotations

import zlib

import urllib3.exceptions

MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""The longest answer body read, and the longest once decoded."""


class AnswerTooLongError(Exception):
    """An answer's body is longer than ``MAX_ANSWER_BYTES``, as sent or once decoded.

    Not an ``http.client.HTTPException``, which urllib3 wraps as a connection broken: it
    comes out of urllib3 as it is (its connection closed), for ``errors_sorted`` to say so.
    """


def too_long(what: str) -> AnswerTooLongError:
    return AnswerTooLongError(
        f"the answer's body is longer than {MAX_ANSWER_BYTES} bytes{what}: no Mixpanel answer"
        " is (something on the way answered)"
    )


_GZIP = zlib.MAX_WBITS | 16
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


def decoded(body: bytes, content_encoding: str | None) -> bytes:
    """``body`` decoded as ``content_encoding`` says (codings are undone last first).

    gzip and deflate, the codings a proxy may apply unasked (no request of ours asks for
    any): a body in another coding is left as it is, as urllib3 does with codings it does
    not know. Raises ``urllib3.exceptions.DecodeError`` for a body that does not decode or
    is cut short, ``AnswerTooLongError`` for one longer than ``MAX_ANSWER_BYTES`` once decoded.
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    for coding in reversed([c for c in codings if c and c != "identity"]):
        if not body:
            break  # an empty body in any coding (a proxy's 503 with no page) is empty
        if coding in ("gzip", "x-gzip"):
            body = _inflated(body, _GZIP, coding)
        elif coding == "deflate":
            # Meant to be zlib-wrapped; some servers send raw deflate (urllib3 reads both).
            try:
                body = _inflated(body, _ZLIB, coding)
            except urllib3.exceptions.DecodeError:
                body = _inflated(body, _RAW_DEFLATE, coding)
        else:
            break
    return body


def _inflated(body: bytes, wbits: int, coding: str) -> bytes:
    """``body`` inflated (gzip: each of its members in turn), ``MAX_ANSWER_BYTES`` at most."""
    out = bytearray()
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(rest, MAX_ANSWER_BYTES + 1 - len(out))
        except zlib.error as exc:
            raise urllib3.exceptions.DecodeError(f"{coding}: {exc}") from exc
        if len(out) > MAX_ANSWER_BYTES:
            raise too_long(" once decoded")
        if not inflater.eof:
            raise urllib3.exceptions.DecodeError(f"{coding}: the body is cut short")
        rest = inflater.unused_data
        if not rest or wbits != _GZIP:
            return bytes(out)
