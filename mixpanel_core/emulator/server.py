"""The HTTP/1.1 keep-alive server: one thread per connection, reading bodies and applying faults
around ``IngestService``."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import orjson

from mixpanel_core.emulator.admin import AdminRoutes
from mixpanel_core.emulator.config import ENDPOINTS, EmulatorConfig
from mixpanel_core.emulator.faults import FaultPlan, Verdict, fault_body
from mixpanel_core.emulator.ingest import IngestRequest, IngestService, Reply
from mixpanel_core.emulator.payload import too_large_message
from mixpanel_core.emulator.store import RecordStore

# A gzip body can be a few bytes bigger than its content; below this slack the exact
# uncompressed size is checked after inflating.
_GZIP_SLACK = 1024
# Bodies that are too large are read and discarded so the connection stays usable, up to this.
_DRAIN_LIMIT = 64 * 1024 * 1024
_CHUNK = 64 * 1024
_ADMIN_BODY_LIMIT = 1024 * 1024


class _BodyTooLargeError(Exception):
    """The body exceeded the limit; ``drained`` says whether the connection can be reused."""

    def __init__(self, drained: bool) -> None:
        super().__init__("body too large")
        self.drained = drained


class _BadRequestError(Exception):
    """The request cannot be framed; answered with 400 and the connection closed."""


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that can close its keep-alive connections on shutdown."""

    daemon_threads = True
    # Keep-alive connection threads would block server_close forever; stop() closes them instead.
    block_on_close = False

    def __init__(
        self,
        config: EmulatorConfig,
        ingest: IngestService,
        admin: AdminRoutes,
        faults: FaultPlan,
        store: RecordStore,
    ) -> None:
        self.config = config
        self.ingest = ingest
        self.admin = admin
        self.faults = faults
        self.store = store
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((config.host, config.port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        # Counted, not only tracked: a client's connection reuse is seen in stats().
        self.store.count_connection()
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-request is normal under fault tests; anything else is a bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut every open connection so its thread ends and its client sees the close."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    # A buffered wfile: status line, headers and body leave in one send when
    # handle_one_request flushes, rather than as two small packets (and two system calls).
    wbufsize = 64 * 1024
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        # Silent: a line per request would swamp benchmarks, and request lines can carry secrets.
        return

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    # Every other method is routed too, so that it is refused as documented (405 on an
    # ingestion endpoint, 404 under /_emulator/), not with http.server's 501 HTML page.
    def do_PUT(self) -> None:
        self._route("PUT")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_OPTIONS(self) -> None:
        self._route("OPTIONS")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def _route(self, method: str) -> None:
        try:
            self._dispatch(method)
        except _BadRequestError as exc:
            body = orjson.dumps({"code": 400, "error": str(exc), "status": "Bad Request"})
            self._send(Reply(400, body), close=True)

    def _dispatch(self, method: str) -> None:
        path, _, raw_query = self.path.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        if path.startswith("/_emulator/"):
            try:
                body = self._read_body(_ADMIN_BODY_LIMIT)
            except _BodyTooLargeError as exc:
                self._send(Reply(413, b'{"error":"control body too large"}'), close=not exc.drained)
                return
            self._send(self.server.admin.dispatch(method, path, query, body))
            return
        endpoint = path.strip("/")
        if endpoint not in ENDPOINTS or method != "POST":
            self._refuse_route(endpoint, method)
            return
        try:
            self._ingest(endpoint, query)
        except (ConnectionError, _BadRequestError):
            raise
        except Exception:
            traceback.print_exc()
            self._send(Reply(500, b'{"code":500,"error":"emulator bug, see its stderr"}'))

    def _refuse_route(self, endpoint: str, method: str) -> None:
        try:
            self._read_body(_ADMIN_BODY_LIMIT)
            close = False
        except _BodyTooLargeError as exc:
            close = not exc.drained
        if endpoint in ENDPOINTS:
            reply = Reply(405, b'{"code":405,"error":"use POST","status":"Method Not Allowed"}')
            self._send(reply, close=close, extra=(("Allow", "POST"),))
        else:
            self._send(Reply(404, b'{"code":404,"error":"not found","status":"Not Found"}'), close)

    def _ingest(self, endpoint: str, query: dict[str, str]) -> None:
        server = self.server
        faults = server.faults
        faults.wait_if_stalled()
        latency = faults.latency
        if latency:
            time.sleep(latency)
        limit = server.config.max_body_bytes
        try:
            body = self._read_body(limit + _GZIP_SLACK)
        except _BodyTooLargeError as exc:
            message = too_large_message(limit)
            reply = Reply(
                413, orjson.dumps({"code": 413, "error": message, "status": "Payload Too Large"})
            )
            server.store.count_request(endpoint, "413")
            self._send(reply, close=not exc.drained)
            return
        verdict = faults.verdict(endpoint)
        if verdict.action == "drop":
            server.store.count_request(endpoint, "dropped")
            # Closing without a byte of answer is what a reset proxy or a crashed server looks like.
            self.close_connection = True
            return
        if verdict.action == "fail":
            server.store.count_request(endpoint, str(verdict.status))
            self._send_fault(verdict)
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = server.ingest.handle(IngestRequest(endpoint, query, headers, body))
        server.store.count_request(endpoint, str(reply.status))
        self._send(reply)

    def _send_fault(self, verdict: Verdict) -> None:
        extra: tuple[tuple[str, str], ...] = ()
        if verdict.retry_after is not None:
            extra = (("Retry-After", _delay_seconds(verdict.retry_after)),)
        self._send(Reply(verdict.status, fault_body(verdict.status)), extra=extra)

    def _read_body(self, limit: int) -> bytes:
        """Read the whole body (sized or chunked); raise _BodyTooLargeError past ``limit``."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(limit)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            # Without a usable length the rest of the stream cannot be framed: answer and close.
            raise _BadRequestError("Content-Length is not a non-negative integer")
        if length > limit:
            raise _BodyTooLargeError(self._discard(length))
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                chunk_size = int(size_line or b"0", 16)
            except ValueError as exc:
                raise _BadRequestError("malformed chunked body") from exc
            if chunk_size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            size += chunk_size
            if size > _DRAIN_LIMIT:
                raise _BodyTooLargeError(drained=False)
            chunk = self.rfile.read(chunk_size)
            self.rfile.readline(1024)
            if size <= limit:
                parts.append(chunk)
        if size > limit:
            raise _BodyTooLargeError(drained=True)
        return b"".join(parts)

    def _discard(self, length: int) -> bool:
        if length > _DRAIN_LIMIT:
            return False
        remaining = length
        while remaining > 0:
            read = self.rfile.read(min(_CHUNK, remaining))
            if not read:
                return False
            remaining -= len(read)
        return True

    def _send(
        self, reply: Reply, close: bool = False, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in (*reply.headers, *extra):
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has the headers of a GET, never its body
            self.wfile.write(reply.body)


def _delay_seconds(seconds: float) -> str:
    """``seconds`` as a Retry-After value: digits, never an exponent (``f"{1e6:g}"`` is
    ``1e+06``, which a client reading whole seconds cannot parse). A fraction is kept, for
    tests that want sub-second waits."""
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.6f}".rstrip("0").rstrip(".")
