"""Decoding of ingestion request bodies: gzip, form-encoded ``data=``, JSON and NDJSON."""

from __future__ import annotations

import base64
import binascii
import codecs
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mixpanel_core import wire


class PayloadError(Exception):
    """The request body cannot be read; ``status`` is the HTTP status to answer with.

    ``params`` are the form fields read next to a ``data`` that could not be (``verbose``
    says how to answer even so)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.params: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Payload:
    """The records of one request and the form fields sent next to ``data`` (verbose, strict...).

    ``text`` is the one JSON document (an array or an object) the records were parsed from,
    for checks that read it whole (``batch_text``); None for NDJSON.
    """

    records: list[Any]
    params: dict[str, str]
    text: bytes | None = None


TOO_LARGE = "Payload Too Large"
"""The ``status`` of Mixpanel's 413 answer."""

# wire.loads reads a body that may hold an integer beyond 64 bits with the json module, which
# runs out of stack, where orjson says "depth limit exceeded", on deeply nested arrays.
_TOO_DEEP = "body is not valid JSON: arrays or objects nested too deep to read"


def too_large_message(limit: int) -> str:
    """Mixpanel's 413 wording."""
    return f"request exceeds max limit of {limit} bytes"


def too_large_body(limit: int) -> bytes:
    """Mixpanel's whole 413 answer, for a body over ``limit`` bytes (or an injected 413)."""
    return wire.dumps({"code": 413, "error": too_large_message(limit), "status": TOO_LARGE})


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body, never producing more than ``limit`` bytes (gzip bombs stop here).

    Read as a gzip reader reads it: a body may be several members one after another (RFC 1952;
    concatenated gzip files are valid gzip), and a member cut short, or bytes after the last
    member that are not one, make the body invalid: zlib alone would return the part it could
    inflate and ignore the rest, accepting what a server refuses.
    """
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            inflated = inflater.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            message = "Content-Encoding is gzip but the body is not gzip data"
            raise PayloadError(400, message) from exc
        size += len(inflated)
        if size > limit:
            raise PayloadError(413, too_large_message(limit))
        parts.append(inflated)
        if not inflater.eof:
            # Under the limit, so all input was consumed: the stream ends before its trailer.
            raise PayloadError(400, "Content-Encoding is gzip but the gzip data is cut short")
        rest = inflater.unused_data
        if not rest:
            return parts[0] if len(parts) == 1 else b"".join(parts)


def parse_payload(body: bytes, content_type: str, *, allow_ndjson: bool) -> Payload:
    """Read the records out of an (already inflated) body according to its Content-Type."""
    media = content_type.partition(";")[0].strip().lower()
    if media == "application/x-ndjson":
        if not allow_ndjson:
            raise PayloadError(400, "application/x-ndjson is accepted by /import only")
        return Payload(_ndjson_records(body), {})
    if media == "application/json" or (not media and body.lstrip()[:1] in (b"[", b"{")):
        return Payload(_json_records(body), {}, body)
    return _form_payload(body)


def _json_records(raw: bytes | str) -> list[Any]:
    try:
        value = wire.loads(raw)
    except ValueError as exc:
        raise PayloadError(400, f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise PayloadError(400, _TOO_DEEP) from exc
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value]
    raise PayloadError(400, "body must be a JSON object or an array of objects")


def _ndjson_records(body: bytes) -> list[Any]:
    records: list[Any] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(wire.loads(line))
        except ValueError as exc:
            raise PayloadError(400, f"NDJSON line {number} is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise PayloadError(400, f"NDJSON line {number}: {_TOO_DEEP}") from exc
    return records


def _unquote_plus(value: bytes) -> bytes:
    """Form-decode ``value`` at C speed.

    ``urllib.parse`` decodes a byte at a time in Python: 40 ms for a 2,000-event ``data=``
    body, longer than everything else the emulator does with it. Turning each ``%XX`` into
    ``\\xXX`` (after doubling any backslash, so nothing else reads as an escape) lets
    ``codecs.escape_decode`` do the work.
    """
    value = value.replace(b"+", b" ")
    if b"%" not in value:
        return value
    escaped = value.replace(b"\\", b"\\\\").replace(b"%", b"\\x")
    try:
        decoded: bytes = codecs.escape_decode(escaped)[0]
    except ValueError as exc:
        raise PayloadError(400, "malformed percent-encoding in the form body") from exc
    return decoded


def _form_pairs(body: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The (name, value) of each non-empty pair, as ``body.split(b"&")`` then
    ``pair.partition(b"=")`` give them, but with one copy of each value, found with memchr-speed
    ``find``: split scans byte by byte, and a ``data=`` value is the whole 500 kB batch."""
    start, length = 0, len(body)
    while start <= length:
        end = body.find(b"&", start)
        if end == -1:
            end = length
        if end > start:
            equals = body.find(b"=", start, end)
            if equals == -1:
                yield body[start:end], b""
            else:
                yield body[start:equals], body[equals + 1 : end]
        start = end + 1


def _form_values(body: bytes) -> dict[str, bytes | str]:
    """The percent-decoded fields, failing where and as the text decoding of each would.

    An ASCII value stays bytes: it is valid UTF-8 as it is, and decoding a 500 kB ``data=`` to
    text only for JSON parsing to encode it back costs two copies. Others are decoded here, in
    order, so a body that is not UTF-8 fails at the same field as before.
    """
    fields: dict[str, bytes | str] = {}
    for key, value in _form_pairs(body):
        try:
            # The value before the name: the order in which `fields[name] = value` ran.
            decoded = _unquote_plus(value)
            text_or_ascii = decoded if decoded.isascii() else decoded.decode()
            fields[_unquote_plus(key).decode()] = text_or_ascii
        except UnicodeDecodeError as exc:
            raise PayloadError(400, "form body is not UTF-8") from exc
    return fields


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()


def _form_fields(body: bytes) -> dict[str, str]:
    """The form's fields as text, as ``urllib.parse.parse_qsl`` reads them."""
    return {name: _text(value) for name, value in _form_values(body).items()}


def _form_payload(body: bytes) -> Payload:
    try:
        fields = _form_values(body)
    except PayloadError as exc:
        # A field is not UTF-8 (the data, most likely): the form's own verbose still counts.
        exc.params = {"verbose": "1"} if _asks_verbose(body) else {}
        raise
    data = fields.pop("data", None)
    params = {name: _text(value) for name, value in fields.items()}
    try:
        return _form_data(data, params)
    except PayloadError as exc:
        exc.params = params
        raise


def _asks_verbose(body: bytes) -> bool:
    """Whether a form some field of which cannot be read has ``verbose=1`` all the same."""
    for key, value in _form_pairs(body):
        try:
            if _unquote_plus(key) == b"verbose" and _unquote_plus(value) == b"1":
                return True
        except PayloadError:
            continue
    return False


def _form_data(data: bytes | str | None, params: dict[str, str]) -> Payload:
    if data is None:
        raise PayloadError(400, "no 'data' field: send data=<JSON record or array> or a JSON body")
    if isinstance(data, bytes) and data[:1] in (b"[", b"{"):
        # The usual data=: ASCII JSON, parsed as bytes and kept as the text, never decoded.
        return Payload(_json_records(data), params, data)
    text = _text(data)
    if text.lstrip()[:1] not in ("[", "{"):
        # Older SDKs send data= as base64 of the JSON; Mixpanel still accepts it.
        try:
            decoded = base64.b64decode(text, validate=True)
            return Payload(_json_records(decoded), params, decoded)
        except (binascii.Error, ValueError) as exc:
            raise PayloadError(400, "'data' is neither JSON nor base64-encoded JSON") from exc
    return Payload(_json_records(text), params, text.encode())
