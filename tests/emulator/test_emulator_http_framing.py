"""HTTP/1.1 message framing over raw sockets: ``Expect: 100-continue``, bodies cut short,
malformed chunked framing, transfer codings, and methods http.server has no handler for."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]


def _head(request_line: str, *headers: str) -> bytes:
    return ("\r\n".join([request_line, "Host: emulator", *headers]) + "\r\n\r\n").encode()


def _connect(emulator: Emulator) -> socket.socket:
    # A short timeout: a request the emulator hangs on fails the test in seconds.
    return socket.create_connection(("127.0.0.1", emulator.port), timeout=3)


def _until_closed(raw: socket.socket) -> bytes:
    """Everything the emulator sends until it closes the connection."""
    answer = b""
    while chunk := raw.recv(65536):
        answer += chunk
    return answer


def _exchange(emulator: Emulator, data: bytes, *, half_close: bool = False) -> bytes:
    """Send ``data`` on a new connection (then end our side if ``half_close``) and read until
    the emulator closes it."""
    with _connect(emulator) as raw:
        raw.sendall(data)
        if half_close:
            raw.shutdown(socket.SHUT_WR)
        return _until_closed(raw)


def _chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def test_expect_100_continue_is_answered_before_the_body_is_sent(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    """curl sends ``Expect: 100-continue`` for bodies over 1 MiB and waits a second for it."""
    body = orjson.dumps([make_event()])
    with _connect(mixpanel_emulator) as raw:
        raw.sendall(
            _head(
                "POST /track HTTP/1.1",
                "Content-Type: application/json",
                f"Content-Length: {len(body)}",
                "Expect: 100-continue",
                "Connection: close",
            )
        )
        interim = raw.recv(65536)  # the socket's timeout fails the test if nothing comes
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        raw.sendall(body)
        answer = _until_closed(raw)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"\r\n\r\n1")
    assert len(mixpanel_emulator.records("track")) == 1


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_the_connection_ends_before_is_not_processed(
    mixpanel_emulator: Emulator, make_event: MakeEvent, framing: str
) -> None:
    """RFC 9112 section 8: an incomplete message is not processed as if it were whole. Cut
    between NDJSON lines, what arrived would otherwise read as two whole records."""
    lines = [orjson.dumps(make_event()) + b"\n" for _ in range(4)]
    start = (
        "POST /import HTTP/1.1",
        "Content-Type: application/x-ndjson",
        "Authorization: Basic ZW11bGF0b3Itc2VjcmV0Og==",  # the API secret, emulator-secret
    )
    if framing == "content-length":
        whole = b"".join(lines)
        sent = _head(*start, f"Content-Length: {len(whole)}") + b"".join(lines[:2])
    else:  # two chunks arrive, the last chunk that ends the body never does
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(line), line) for line in lines[:2])
        sent = _head(*start, "Transfer-Encoding: chunked") + chunks
    assert _exchange(mixpanel_emulator, sent, half_close=True) == b""
    assert mixpanel_emulator.records() == []
    assert mixpanel_emulator.stats()["requests"] == {}


@pytest.mark.parametrize("size", [b"-1", b"0x5", b"+5", b""])
def test_a_chunk_size_that_is_not_hex_digits_is_400_and_the_connection_closed(
    mixpanel_emulator: Emulator, size: bytes
) -> None:
    head = _head(
        "POST /track HTTP/1.1", "Content-Type: application/json", "Transfer-Encoding: chunked"
    )
    answer = _exchange(mixpanel_emulator, head + size + b"\r\n[{}]\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.count(b"HTTP/1.1 ") == 1
    assert b"Connection: close" in answer
    assert b"chunk size is not hex digits" in answer


def test_a_transfer_coding_besides_chunked_is_501_and_the_connection_closed(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    """RFC 9112 section 6.1: a server answers 501 to a transfer coding it does not know."""
    head = _head(
        "POST /track HTTP/1.1",
        "Content-Type: application/json",
        "Transfer-Encoding: gzip, chunked",
    )
    answer = _exchange(mixpanel_emulator, head + _chunked(orjson.dumps([make_event()])))
    assert answer.startswith(b"HTTP/1.1 501 ")
    assert answer.count(b"HTTP/1.1 ") == 1
    assert b"Connection: close" in answer
    assert b"Transfer-Encoding gzip is not supported" in answer
    assert mixpanel_emulator.records() == []


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        (("Transfer-Encoding: chunked, gzip",), b"must end with chunked"),
        (("Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), b"must end with chunked"),
        (("Transfer-Encoding: chunked", "Content-Length: 40"), b"not both"),
    ],
)
def test_a_body_framed_two_ways_or_not_ending_in_chunked_is_400_and_the_connection_closed(
    mixpanel_emulator: Emulator, make_event: MakeEvent, headers: tuple[str, ...], says: bytes
) -> None:
    head = _head("POST /track HTTP/1.1", "Content-Type: application/json", *headers)
    answer = _exchange(mixpanel_emulator, head + _chunked(orjson.dumps([make_event()])))
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.count(b"HTTP/1.1 ") == 1
    assert b"Connection: close" in answer
    assert says in answer
    assert mixpanel_emulator.records() == []


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "M-SEARCH"])
def test_a_method_http_server_has_no_handler_for_is_405_with_allow(
    mixpanel_emulator: Emulator, method: str
) -> None:
    answer = _exchange(
        mixpanel_emulator,
        _head(f"{method} /track HTTP/1.1", "Content-Length: 0", "Connection: close"),
    )
    assert answer.startswith(b"HTTP/1.1 405 ")
    assert b"\r\nAllow: POST\r\n" in answer


def test_a_method_http_server_has_no_handler_for_is_404_under_the_control_routes(
    mixpanel_emulator: Emulator,
) -> None:
    answer = _exchange(
        mixpanel_emulator,
        _head("PROPFIND /_emulator/health HTTP/1.1", "Content-Length: 0", "Connection: close"),
    )
    assert answer.startswith(b"HTTP/1.1 404 ")
    assert answer.endswith(b'{"error":"no route PROPFIND /_emulator/health"}')
