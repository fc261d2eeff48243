"""An HTTPS server that closes kept-alive connections, over real sockets: every request is
answered in its first attempt, with no retry allowed.

urllib3 polls a pooled connection before reusing it, which finds one the server closed. Over
TLS, a request written to such a connection anyway fails as an ``SSLError`` (the write meets
the close), not as the ``ProtocolError`` that ``http._resend_at_once`` sends again at once: a
change that skipped the poll for connections used moments ago cost an attempt there, and
failed the records under ``max_retries = 0`` (review R50). The same failure comes when the
server closes the connection after the poll, as the request is being written: it is made again
at once, as a close met when reading the answer is.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from mixpanel_core.api_limits import LARGEST_BODY_BYTES
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.frozen import freeze
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.ingestion.call import MAYBE_APPLIED
from mixpanel_core.messages import PeopleUpdate
from mixpanel_core.settings import MixpanelSettings

from .conftest import TOKEN, event, profile

pytestmark = pytest.mark.integration

IDLE = 0.05
"""Seconds the server keeps a connection that sends nothing."""


class _QuickToClose(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    timeout = IDLE  # a connection idle this long ends its handler, which closes it

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"status": 1, "error": null}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _TlsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _QuickToClose)
        self.context = context
        self.connections = 0

    def get_request(self) -> tuple[ssl.SSLSocket, object]:
        sock, address = super().get_request()
        self.connections += 1
        return self.context.wrap_socket(sock, server_side=True), address


@pytest.fixture
def certified(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for 127.0.0.1, and the CA bundle that trusts it."""
    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    return context, bundle


@pytest.fixture
def tls_server(certified: tuple[ssl.SSLContext, Path]) -> Iterator[_TlsServer]:
    server = _TlsServer(certified[0])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _send_large_batches(port: int, bundle: Path, pause: float = 0.0) -> None:
    """Three batches of about 1.8 MB (more than the sockets' buffers hold, so a write meets a
    close), ``pause`` seconds apart; each must be accepted in its first attempt."""
    settings = MixpanelSettings(
        api_host=f"https://127.0.0.1:{port}", token=TOKEN, ca_bundle=str(bundle)
    )
    client = IngestionClient(settings, HttpOptions(max_retries=0))
    try:
        for _ in range(3):
            batch = [event(padding="p" * 45_000) for _ in range(40)]
            result = client.send_batch("track", batch)
            assert [(r.status, r.attempts) for r in result.reports] == [
                (DeliveryStatus.ACCEPTED, 1)
            ] * 40
            time.sleep(pause)
    finally:
        client.close()


def test_a_connection_the_server_closed_while_idle_costs_no_attempt(
    tls_server: _TlsServer, certified: tuple[ssl.SSLContext, Path]
) -> None:
    # The server closes each kept-alive connection during the pause.
    _send_large_batches(tls_server.server_address[1], certified[1], pause=IDLE * 4)
    assert tls_server.connections == 3  # each request found its connection closed


ACCEPTED = b'HTTP/1.1 200 OK\r\nContent-Length: 28\r\n\r\n{"status": 1, "error": null}'
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown"


class _ResetsTheSecondRequest(threading.Thread):
    """An HTTPS server: on each connection it answers the first request (200 on the first
    connection, ``later`` on the others), then reads only the head of the next one and resets
    the connection, as a server closing it at that moment does; the client meets the close
    while it writes the body."""

    def __init__(self, context: ssl.SSLContext, later: bytes = ACCEPTED) -> None:
        super().__init__(daemon=True)
        self.context = context
        self.later = later
        self.listener = socket.socket()
        # A small receive buffer (the connections inherit it) keeps the client from writing
        # the whole body into the sockets' buffers before the reset: its write must fail.
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.answered = 0

    def run(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # closed by the test
            with raw, self.context.wrap_socket(raw, server_side=True) as conn:
                self._serve(conn)

    def _serve(self, conn: ssl.SSLSocket) -> None:
        reader = conn.makefile("rb")
        head = _head(reader)
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        reader.read(length)
        self.answered += 1  # before the answer: the test reads it once the answer is in
        conn.sendall(self.later if self.answered > 1 else ACCEPTED)
        _head(reader)  # the next request's head, and not a byte of its body
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _head(reader: object) -> bytes:
    lines = []
    while (line := reader.readline()) not in (b"\r\n", b""):  # type: ignore[attr-defined]
        lines.append(line)
    return b"".join(lines)


def test_a_close_met_while_the_request_is_written_costs_no_attempt(
    certified: tuple[ssl.SSLContext, Path],
) -> None:
    server = _ResetsTheSecondRequest(certified[0])
    server.start()
    try:
        _send_large_batches(server.port, certified[1])
    finally:
        server.listener.close()
    assert server.answered == 3


class _ReadsThenChangesItsCertificate(threading.Thread):
    """An HTTPS server that answers the first request on its first connection, reads the
    next one whole and closes the connection without answering; every later connection
    presents a certificate from an authority the client does not trust."""

    def __init__(self, first: ssl.SSLContext, later: ssl.SSLContext) -> None:
        super().__init__(daemon=True)
        self.contexts = [first, later]
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.read_whole = 0

    def run(self) -> None:
        context = self.contexts[0]
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # closed by the test
            try:
                with (
                    raw,
                    context.wrap_socket(raw, server_side=True) as conn,
                    conn.makefile("rb") as reader,
                ):
                    for answered in (True, False):
                        head = _head(reader)
                        reader.read(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
                        self.read_whole += 1
                        if answered:
                            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
            except ssl.SSLError:
                pass  # the client refused the certificate
            context = self.contexts[1]


def test_a_request_made_again_at_once_and_refused_its_certificate_may_have_been_applied(
    certified: tuple[ssl.SSLContext, Path],
) -> None:
    """The try before may have been applied, whatever ends the one made again at once: a
    refused certificate is no exception (review R51 F1)."""
    untrusted = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(untrusted)
    server = _ReadsThenChangesItsCertificate(certified[0], untrusted)
    server.start()
    settings = MixpanelSettings(
        api_host=f"https://127.0.0.1:{server.port}", token=TOKEN, ca_bundle=str(certified[1])
    )
    client = IngestionClient(settings, HttpOptions(max_retries=0))
    try:
        assert client.send_batch("track", [event()]).ok
        (report,) = client.send_batch("track", [event()]).reports
    finally:
        client.close()
        server.listener.close()
    assert report.status is DeliveryStatus.FAILED
    assert "TLS failure" in (report.reason or "")
    assert report.maybe_applied
    assert (report.reason or "").endswith(MAYBE_APPLIED)
    assert server.read_whole == 2


def test_a_request_made_again_after_a_broken_write_was_not_applied_before(
    certified: tuple[ssl.SSLContext, Path],
) -> None:
    """The server reset the connection having read only the request's head: the try made
    again at once failing (a 503, no retry left) does not make its records "maybe applied"
    (review R52 F2)."""
    server = _ResetsTheSecondRequest(certified[0], later=UNAVAILABLE)
    server.start()
    settings = MixpanelSettings(
        api_host=f"https://127.0.0.1:{server.port}", token=TOKEN, ca_bundle=str(certified[1])
    )
    # A body of 6 MB: more than the sockets' buffers can take in (the client's send buffer
    # grows to 4 MiB here, tcp_wmem), so the write is still going when the reset comes.
    options = HttpOptions(max_retries=0, max_batch_bytes=LARGEST_BODY_BYTES)
    client = IngestionClient(settings, options)
    try:
        assert client.send_batch("engage", [profile(n=1)]).ok
        padded = [_padded_profile(n) for n in range(2, 42)]
        reports = client.send_batch("engage", padded).reports
    finally:
        client.close()
        server.listener.close()
    assert {(r.status, r.http_status, r.maybe_applied) for r in reports} == {
        (DeliveryStatus.FAILED, 503, False)
    }
    assert server.answered == 2


def _padded_profile(n: int) -> PeopleUpdate:
    record = {"$token": TOKEN, "$distinct_id": f"user-{n}", "$set": {"pad": "p" * 150_000}}
    return PeopleUpdate(freeze(record, PeopleUpdate.kind))
