"""Reading one request's body off an HTTP/1.1 connection: sized or chunked, within a limit.

What cannot be framed is refused (``UnframeableError``: answer it, then close), and a body the
connection ended before is no request at all (``IncompleteBodyError``: RFC 9112 section 8 says
an incomplete message must not be processed as if it were whole).
"""

from __future__ import annotations

import re
from email.message import Message
from io import BufferedIOBase
from typing import Literal

# Bodies that are too large are read and discarded so the connection stays usable, up to this.
DRAIN_LIMIT = 64 * 1024 * 1024
_CHUNK = 64 * 1024
# A chunk-size line (size and extensions) longer than this is refused, not buffered.
_LINE_LIMIT = 4096
# RFC 9112 section 7.1: chunk-size is hex digits only, no sign and no 0x.
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")


class BodyTooLargeError(Exception):
    """The body exceeded the limit; ``drained`` says whether the connection can be reused."""

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


def read_body(rfile: BufferedIOBase, headers: Message, limit: int) -> bytes:
    """The whole body of the request with ``headers``.

    Raises ``BodyTooLargeError`` past ``limit``, ``UnframeableError`` for framing that does not
    say where the body ends, and ``IncompleteBodyError`` if the connection ends before it does.
    """
    if _framing(headers) == "chunked":
        return _read_chunked(rfile, limit)
    return _read_sized(rfile, _content_length(headers), limit)


def _framing(headers: Message) -> Literal["chunked", "sized"]:
    """How the body is delimited, as RFC 9112 section 6 has a server decide it."""
    codings = [
        coding.strip().lower()
        for header in headers.get_all("Transfer-Encoding") or ()
        for coding in header.split(",")
        if coding.strip()
    ]
    if not codings:
        return "sized"
    if codings[-1] != "chunked" or "chunked" in codings[:-1]:
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
    return "chunked"


def _content_length(headers: Message) -> int:
    values = headers.get_all("Content-Length") or ()
    if len(set(values)) > 1:
        raise UnframeableError(400, "Content-Length is sent twice with different values")
    value = values[0].strip() if values else "0"
    if not value.isdigit() or not value.isascii():
        raise UnframeableError(400, "Content-Length is not a non-negative integer")
    if len(value.lstrip("0")) > len(str(DRAIN_LIMIT)):
        # Past anything the emulator reads (and past the digits int() converts): refused unread.
        raise BodyTooLargeError(drained=False)
    return int(value)


def _read_sized(rfile: BufferedIOBase, length: int, limit: int) -> bytes:
    if length > limit:
        if length > DRAIN_LIMIT:
            raise BodyTooLargeError(drained=False)
        _discard(rfile, length)
        raise BodyTooLargeError(drained=True)
    body = rfile.read(length) if length else b""
    if len(body) < length:
        raise IncompleteBodyError
    return body


def _discard(rfile: BufferedIOBase, length: int) -> None:
    remaining = length
    while remaining > 0:
        read = rfile.read(min(_CHUNK, remaining))
        if not read:
            raise IncompleteBodyError
        remaining -= len(read)


def _read_chunked(rfile: BufferedIOBase, limit: int) -> bytes:
    """The chunks' data joined; past ``limit`` the rest is read and dropped (up to the drain
    limit) so that the connection stays usable."""
    parts: list[bytes] = []
    size = 0
    while chunk_size := _chunk_size(_framing_line(rfile)):
        size += chunk_size
        if size > DRAIN_LIMIT:
            raise BodyTooLargeError(drained=False)
        chunk = rfile.read(chunk_size)
        if len(chunk) < chunk_size:
            raise IncompleteBodyError
        if _framing_line(rfile):
            raise UnframeableError(400, "malformed chunked body: a chunk is longer than its size")
        if size <= limit:
            parts.append(chunk)
    while _framing_line(rfile):
        pass  # trailer fields, up to the empty line that ends the message
    if size > limit:
        raise BodyTooLargeError(drained=True)
    return b"".join(parts)


def _chunk_size(line: bytes) -> int:
    size = line.split(b";", 1)[0].strip()
    if _CHUNK_SIZE.fullmatch(size) is None:
        raise UnframeableError(400, "malformed chunked body: a chunk size is not hex digits")
    return int(size, 16)


def _framing_line(rfile: BufferedIOBase) -> bytes:
    """One line of chunked framing, without its line end."""
    line = rfile.readline(_LINE_LIMIT + 1)
    if not line.endswith(b"\n"):
        if len(line) > _LINE_LIMIT:
            raise UnframeableError(400, "malformed chunked body: a framing line is too long")
        raise IncompleteBodyError
    return line.rstrip(b"\r\n")
