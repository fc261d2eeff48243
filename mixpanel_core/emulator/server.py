"""The HTTP/1.1 keep-alive server: one thread per connection, reading bodies and applying faults
around ``IngestService``."""

from __future__ import annotations

import contextlib
import functools
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import orjson

from mixpanel_core.emulator.admin import AdminRoutes
from mixpanel_core.emulator.config import ENDPOINTS, EmulatorConfig
from mixpanel_core.emulator.faults import FaultPlan, Verdict, fault_body
from mixpanel_core.emulator.ingest import IngestRequest, IngestService, Reply
from mixpanel_core.emulator.payload import too_large_body
from mixpanel_core.emulator.request_body import (
    BodyTooLargeError,
    IncompleteBodyError,
    UnframeableError,
    read_body,
)
from mixpanel_core.emulator.store import RecordFileError, RecordStore

# A gzip body is read up to this much past its raw limit, and its inflated size checked then.
_GZIP_SLACK = 1024
_GZIP_RAW_FACTOR = 2
"""A gzip body's bytes are read up to twice the limit: the limit is on the inflated size, and
a stream that does not shrink its content (values that do not compress, level 0, a flush
after each record: about 5 bytes each) is bigger than it. Its inflated size is checked
whole after inflating."""
_ADMIN_BODY_LIMIT = 1024 * 1024


def _origin_form(target: str) -> str:
    """The request target as a path and query: an absolute-form target
    (``http://host:port/track?verbose=1``), which RFC 9112 section 3.2.2 says a server must
    accept, loses its scheme and authority."""
    scheme, separator, rest = target.partition("://")
    if not separator or scheme.lower() not in ("http", "https") or "/" in scheme:
        return target
    slash = rest.find("/")
    query = rest.find("?")
    if slash < 0 or 0 <= query < slash:
        return "/" + rest[query:] if query >= 0 else "/"
    return rest[slash:]


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

    def handle_one_request(self) -> None:
        self._await_client()
        super().handle_one_request()

    def _await_client(self) -> None:
        """Bound the wait for the client's next bytes by ``idle_timeout``: a connection that
        sends nothing for that long is closed (http.server ends it on the TimeoutError), as a
        real server closes idle keep-alive connections."""
        idle_timeout = self.server.config.idle_timeout
        if idle_timeout is not None:
            self.connection.settimeout(idle_timeout)

    def send_response_only(self, code: int, message: str | None = None) -> None:
        # Every answer starts here. The idle timeout is the client's silence, not the time an
        # answer takes to reach a client slow to read it: unbounded until the next wait.
        if self.server.config.idle_timeout is not None:
            self.connection.settimeout(None)
        super().send_response_only(code, message)

    def log_message(self, format: str, *args: Any) -> None:
        # Silent: a line per request would swamp benchmarks, and request lines can carry secrets.
        return

    def handle_expect_100(self) -> bool:
        # Owed, not sent: it goes out when the body is about to be read (after a stall, and
        # not at all to a request refused on its headers alone), from _read_body.
        self._continue_owed = True
        return True

    def _send_continue(self) -> None:
        self.send_response_only(HTTPStatus.CONTINUE)
        self.end_headers()
        # The interim answer must leave now: the client waits for it before sending the body,
        # and the buffered wfile would otherwise hold it until the final answer.
        self.wfile.flush()
        self._await_client()

    def _read_body(self, limit: int) -> bytes:
        """The request's body (see ``read_body``), after the 100 Continue it may be owed."""
        send_continue = self._send_continue if self._continue_owed else None
        self._continue_owed = False
        return read_body(self.rfile, self.headers, limit, send_continue)

    def parse_request(self) -> bool:
        # Whether this request asked for 100 Continue and has not had it yet.
        self._continue_owed = False
        parsed = super().parse_request()
        if parsed and self.request_version == "HTTP/1.0" and "Transfer-Encoding" in self.headers:
            # RFC 9112 section 6.1: an HTTP/1.0 message's Transfer-Encoding is faulty framing
            # (an HTTP/1.0 hop may have read the body another way): processed, then closed.
            self.close_connection = True
        if parsed and not hasattr(self, "do_" + self.command):
            # http.server answers 501 to a method it finds no do_<METHOD> for; routed instead,
            # every method (TRACE, PROPFIND, ...) gets the documented 405 or 404.
            setattr(self, "do_" + self.command, functools.partial(self._route, self.command))
        return parsed

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        try:
            self._dispatch(method)
        except UnframeableError as exc:
            phrase = HTTPStatus(exc.status).phrase
            body = orjson.dumps({"code": exc.status, "error": str(exc), "status": phrase})
            self._send(Reply(exc.status, body), close=True)
        except IncompleteBodyError:
            # Not a request: nothing is processed, and the client that hung up hears nothing.
            self.close_connection = True

    def _dispatch(self, method: str) -> None:
        path, _, raw_query = _origin_form(self.path).partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        if path.startswith("/_emulator/"):
            try:
                body = self._read_body(_ADMIN_BODY_LIMIT)
            except BodyTooLargeError as exc:
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
        except (ConnectionError, TimeoutError, UnframeableError, IncompleteBodyError):
            raise
        except Exception:
            traceback.print_exc()
            self._send(Reply(500, b'{"code":500,"error":"emulator bug, see its stderr"}'))

    def _refuse_route(self, endpoint: str, method: str) -> None:
        try:
            self._read_body(_ADMIN_BODY_LIMIT)
            close = False
        except BodyTooLargeError as exc:
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
        gzipped = self.headers.get("Content-Encoding", "").strip().lower() == "gzip"
        # A plain body is held to the limit itself: one whose Content-Length is over it gets
        # its 413 instead of a 100 Continue (review R66 F2).
        raw_limit = limit * _GZIP_RAW_FACTOR + _GZIP_SLACK if gzipped else limit
        body: bytes | None
        try:
            body, drained = self._read_body(raw_limit), True
        except BodyTooLargeError as exc:
            body, drained = None, exc.drained
        # Decided for every whole request, too large or not: a fault applies to the next n
        # requests whatever their size (one cut short or unframeable is no request).
        verdict = faults.verdict(endpoint)
        if verdict.action != "serve" and (verdict.action != "apply_then_drop" or body is None):
            self._apply_fault(endpoint, verdict, close=not drained)
            return
        if body is None:
            reply = Reply(413, too_large_body(limit))
            server.store.count_request(endpoint, "413")
            self._send(reply, close=not drained)
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            reply = server.ingest.handle(IngestRequest(endpoint, query, headers, body))
        except RecordFileError as exc:
            print(f"mixpanel-core emulator: {exc}", file=sys.stderr)
            error = {"code": 500, "error": str(exc), "status": "Internal Server Error"}
            reply = Reply(500, orjson.dumps(error))
        if verdict.action == "apply_then_drop":
            self._apply_fault(endpoint, verdict, close=True)  # applied, and never answered
            return
        server.store.count_request(endpoint, str(reply.status))
        self._send(reply)

    def _apply_fault(self, endpoint: str, verdict: Verdict, *, close: bool) -> None:
        """Answer with the injected status, or drop the connection, counting the request."""
        if verdict.action in ("drop", "apply_then_drop"):
            self.server.store.count_request(endpoint, "dropped")
            # Closing without a byte of answer is what a reset proxy or a crashed server looks like.
            self.close_connection = True
            return
        self.server.store.count_request(endpoint, str(verdict.status))
        extra: tuple[tuple[str, str], ...] = ()
        if verdict.retry_after is not None:
            extra = (("Retry-After", _delay_seconds(verdict.retry_after)),)
        body = fault_body(verdict.status, max_body_bytes=self.server.config.max_body_bytes)
        self._send(Reply(verdict.status, body), close=close, extra=extra)

    def _send(
        self, reply: Reply, close: bool = False, extra: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in (*reply.headers, *extra):
            self.send_header(name, value)
        if close or self.close_connection:
            # RFC 9112 section 9.6: an answer the connection closes after says so (and
            # http.server closes it on seeing the header).
            self.send_header("Connection", "close")
        elif self.request_version == "HTTP/1.0":
            # Section 9.3: an HTTP/1.0 client keeps the connection only if the answer says so.
            self.send_header("Connection", "keep-alive")
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
