"""Reading one request's body off an HTTP/1.1 connection: sized or chunked, within a limit.

What cannot be framed is refused (``UnframeableError``: answer it, then close), and a body the
connection ended before is no request at all (``IncompleteBodyError``: RFC 9112 section 8 says
an incomplete message must not be processed as if it were whole). A body over the limit is read
to its end and dropped, a piece at a time, so that the connection stays usable and a body cut
short is told from a whole one whatever its size.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import Message
from io import BufferedIOBase

# Bodies are read (and dropped past the limit) this many bytes at a time.
_PIECE = 64 * 1024
# A chunk-size line (size and extensions) longer than this is refused, not buffered.
_LINE_LIMIT = 4096
# RFC 9112 section 7.1: chunk-size is hex digits only, no sign, no 0x and no leading space.
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")
# No HTTP implementation frames a longer body or chunk (the largest signed 64-bit length).
_MAX_LENGTH = 2**63 - 1


class BodyTooLargeError(Exception):
    """The body exceeded the limit; ``drained`` says whether it was read to its end, so that
    the connection can be reused."""

    def __init__(self, drained: bool) -> None:
        super().__init__("body too large")
        self.drained = drained


class UnframeableError(Exception):
    """Where the body ends cannot be told: answer ``status`` (400, or 501 for a transfer
    coding the emulator does not implement) and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class IncompleteBodyError(Exception):
    """The connection ended before the body did: nothing to process, nobody to answer."""


def read_body(
    rfile: BufferedIOBase,
    headers: Message,
    limit: int,
    send_continue: Callable[[], None] | None = None,
) -> bytes:
    """The whole body of the request with ``headers``.

    ``send_continue`` answers ``100 Continue`` to a client that asked to be told before it
    sends the body; it is called once the body is not known to be over ``limit``. One whose
    Content-Length is over it is refused unread (RFC 9110 section 10.1.1): the client then
    sends no body, so the connection cannot be reused.

    Raises ``BodyTooLargeError`` past ``limit``, ``UnframeableError`` for framing that does not
    say where the body ends, and ``IncompleteBodyError`` if the connection ends before it does.
    """
    length = _declared_length(headers)
    if send_continue is not None:
        if length is not None and length > limit:
            raise BodyTooLargeError(drained=False)
        send_continue()
    if length is None:
        return _read_chunked(rfile, limit)
    return _read_sized(rfile, length, limit)


def _declared_length(headers: Message) -> int | None:
    """The body's length, decided as RFC 9112 section 6 has a server decide it: None for a
    chunked body, whose length shows only as it is read."""
    fields = headers.get_all("Transfer-Encoding")
    if fields is None:
        return _sized_length(headers)
    codings = [
        coding.strip().lower() for field in fields for coding in field.split(",") if coding.strip()
    ]
    # Section 6.3 item 4: a Transfer-Encoding, even an empty one, that does not end with
    # chunked leaves the body without an end.
    if not codings or codings[-1] != "chunked" or "chunked" in codings[:-1]:
        raise UnframeableError(
            400, "Transfer-Encoding must end with chunked, applied once: the body has no end"
        )
    if len(codings) > 1:
        raise UnframeableError(
            501,
            f"Transfer-Encoding {', '.join(codings[:-1])} is not supported:"
            " send chunked alone, and compress with Content-Encoding: gzip",
        )
    if headers.get("Content-Length") is not None:
        # Either could be the one a proxy on the way read: a request smuggling shape.
        raise UnframeableError(400, "send Transfer-Encoding or Content-Length, not both")
    return None


def _sized_length(headers: Message) -> int:
    values = headers.get_all("Content-Length") or ()
    if len(set(values)) > 1:
        raise UnframeableError(400, "Content-Length is sent twice with different values")
    value = values[0].strip() if values else "0"
    if not value.isdigit() or not value.isascii():
        raise UnframeableError(400, "Content-Length is not a non-negative integer")
    # Leading zeros are allowed and say nothing, but int() would count them against the
    # 4300 digits it converts.
    digits = value.lstrip("0") or "0"
    if len(digits) > len(str(_MAX_LENGTH)) or int(digits) > _MAX_LENGTH:
        raise UnframeableError(400, f"Content-Length is over {_MAX_LENGTH}")
    return int(digits)


def _read_sized(rfile: BufferedIOBase, length: int, limit: int) -> bytes:
    if length > limit:
        _read_exactly(rfile, length, None)
        raise BodyTooLargeError(drained=True)
    body = rfile.read(length) if length else b""
    if len(body) < length:
        raise IncompleteBodyError
    return body


def _read_chunked(rfile: BufferedIOBase, limit: int) -> bytes:
    """The chunks' data joined; past ``limit`` the rest is read and dropped."""
    # One growing buffer, not a list of chunks: a body of one-byte chunks costs its size,
    # not an object per byte.
    body: bytearray | None = bytearray()
    while chunk_size := _chunk_size(_framing_line(rfile)):
        if body is not None and len(body) + chunk_size > limit:
            body = None  # nothing is kept for a body that is refused anyway
        _read_exactly(rfile, chunk_size, body)
        if _framing_line(rfile):
            raise UnframeableError(400, "malformed chunked body: a chunk is longer than its size")
    while _framing_line(rfile):
        pass  # trailer fields, up to the empty line that ends the message
    if body is None:
        raise BodyTooLargeError(drained=True)
    return bytes(body)


def _read_exactly(rfile: BufferedIOBase, length: int, into: bytearray | None) -> None:
    """Read ``length`` bytes a piece at a time, appending them to ``into`` or, without it,
    dropping them: a body of any size costs at most a piece."""
    remaining = length
    while remaining > 0:
        piece = rfile.read(min(_PIECE, remaining))
        if not piece:
            raise IncompleteBodyError
        if into is not None:
            into += piece
        remaining -= len(piece)


def _chunk_size(line: bytes) -> int:
    # Whitespace may come before a chunk extension's ";" (RFC 9112 section 7.1.1), and is
    # tolerated at the end of the line; never before the size.
    size = line.split(b";", 1)[0].rstrip(b" \t")
    if _CHUNK_SIZE.fullmatch(size) is None:
        raise UnframeableError(400, "malformed chunked body: a chunk size is not hex digits")
    chunk_size = int(size, 16)
    if chunk_size > _MAX_LENGTH:
        raise UnframeableError(400, f"malformed chunked body: a chunk size is over {_MAX_LENGTH}")
    return chunk_size


def _framing_line(rfile: BufferedIOBase) -> bytes:
    """One line of chunked framing, without its line end."""
    line = rfile.readline(_LINE_LIMIT + 1)
    if not line.endswith(b"\n"):
        if len(line) > _LINE_LIMIT:
            raise UnframeableError(400, "malformed chunked body: a framing line is too long")
        raise IncompleteBodyError
    return line.rstrip(b"\r\n")
