"""Bounding each request's total time: one watchdog thread per HTTP session.

urllib3's timeouts bound each socket operation, not a request: a server (or a proxy) that
trickles its answer a byte at a time, each within ``read_timeout``, holds the request for
ever. Every request is therefore given an end (``post``'s ``total``), and one thread per
session, the watchdog, shuts down the socket of a request still out at its end: the blocked
read returns at once, and ``post`` raises a ``NetworkError`` saying it timed out (retried
like any timeout). Why a watchdog rather than a thread per request or a check per read:
a request is made on the caller's thread, and the status line and headers are read inside
http.client, where no code of ours runs between reads; a thread per request would cost
every request (``buffered_http`` sends one per 2,000 events, ``http`` one per event) a
thread start. The watchdog costs a request two short lock holds and no wake-up: it sleeps
until the earliest end of the requests out, and exits after ``WATCHDOG_IDLE`` seconds with
none (and when the session is closed or freed), so clients built and dropped leave no
thread behind. It is not woken when a request ends (it exits that much later): a pre-fork
server (uWSGI) forking its workers right after the app delivered something would otherwise
find it running, and a worker forked while another thread holds the interpreter hangs.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import socket
import threading
import time
from typing import Any

import urllib3.connection
import urllib3.connectionpool

from mixpanel_core.ingestion.answer_body import MAX_ANSWER_BYTES, too_long

WATCHDOG_IDLE = 5.0
"""Seconds the watchdog stays without a request to watch before its thread ends."""

READ_PIECE = 65536
"""How much of a body of unknown or excessive length is read at a time (see
``_AnswerNotedResponse.read``)."""

OVERDUE_RECHECK = 0.05
"""How often the watchdog shuts the socket of an overdue request again (one still connecting
when its end came has no socket yet)."""


class Watch:
    """One request out: when it must end, the connection it uses, and what happened to it.

    Written by the request's thread and the watchdog, always under the watchdog's lock but
    for ``answered``, which only the request's thread reads back."""

    __slots__ = (
        "answered",
        "conn",
        "ends",
        "expired",
        "fresh",
        "released",
        "reused",
        "sent_before",
        "sock",
        "total",
        "watchdog",
        "written",
    )

    def __init__(self, total: float, watchdog: Watchdog) -> None:
        self.total = total
        self.watchdog = watchdog
        self.ends = time.monotonic() + total
        self.conn: Any = None
        """The connection the request is being made on (``None``: none yet, or given back)."""
        self.sock: socket.socket | None = None
        """The OS socket of ``conn`` once connected. Kept here because an answer that closes
        its connection (``Connection: close``, HTTP/1.0) takes the socket out of ``conn``
        (http.client hands it to the response), while the body is still being read."""
        self.reused = False
        """Whether that connection had carried an earlier request (taken from the pool open)."""
        self.answered = False
        """Whether any byte of the answer arrived (see ``_AnswerNotedResponse``)."""
        self.fresh = False
        """Whether the request must be made on a new connection (see ``HttpSession.post``)."""
        self.sent_before = False
        """Whether the try before this one may have reached the server (the request is made
        again at once after a kept-alive connection was closed under it): the new try
        overwrites ``conn``, ``sock`` and ``reused``, and must not erase that."""
        self.released = False
        """Whether the connection went back to the pool after a whole answer."""
        self.expired = False
        """Whether the watchdog ended the request (its socket was shut down)."""
        self.written = False
        """Whether the whole request was handed to the socket (a send that raised left part
        of it unsent: the server cannot have read it whole)."""


this_thread = threading.local()
"""``watch``: the ``Watch`` of the request the thread is making, read by the pool and
connection classes below (urllib3 gives them no other way to learn it)."""


def watch_of_thread() -> Watch | None:
    watch: Watch | None = getattr(this_thread, "watch", None)
    return watch


def _raw_socket(sock: Any) -> socket.socket | None:
    """The OS socket under ``sock`` (an ``SSLSocket`` is one; TLS inside a TLS proxy tunnel
    wraps one)."""
    for _ in range(4):
        if sock is None or isinstance(sock, socket.socket):
            return sock
        sock = getattr(sock, "socket", None)
    return None


def _shut(watch: Watch) -> None:
    """Shut down the socket of ``watch``'s request (from the watchdog's thread): a read or
    write blocked on it returns at once. ``socket.socket.shutdown`` itself, not
    ``SSLSocket``'s, which would also drop the TLS state the request's thread is using. A
    socket closed meanwhile has no descriptor left to shut (never another one's)."""
    sock = watch.sock or _raw_socket(getattr(watch.conn, "sock", None))
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed by the request's thread
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """Ends the requests of one session that are still out at their end (see above)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self._wakes_at = math.inf
        """When the thread will look again (``inf``: it is not running)."""
        self._last_used = time.monotonic()
        self._stopping = False

    def start(self, total: float) -> Watch:
        """A watch of a request that must end within ``total`` seconds."""
        watch = Watch(total, self)
        with self._cond:
            self._watches.add(watch)
            self._last_used = time.monotonic()
            self._stopping = False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="mixpanel-core-request-watchdog", daemon=True
                )
                self._wakes_at = watch.ends
                self._thread.start()
            elif watch.ends < self._wakes_at:
                self._wakes_at = watch.ends
                self._cond.notify()
        return watch

    def attach(self, watch: Watch, conn: Any) -> None:
        """The request of ``watch`` is being made on ``conn``; shut it now if it is overdue."""
        with self._cond:
            watch.conn = conn
            watch.sock = _raw_socket(getattr(conn, "sock", None))
            if watch.expired:
                _shut(watch)

    def connected(self, watch: Watch, conn: Any) -> None:
        """``conn``, the connection of ``watch``'s request, has just connected."""
        with self._cond:
            if watch.conn is conn:
                watch.sock = _raw_socket(conn.sock)
                if watch.expired:
                    _shut(watch)

    def release(self, watch: Watch, conn: Any) -> None:
        """``conn`` goes back to the pool, its answer read whole: another request may take it,
        so the watchdog must never shut it on behalf of this one."""
        with self._cond:
            if watch.conn is conn:
                watch.conn = watch.sock = None
                watch.released = True

    def finish(self, watch: Watch) -> bool:
        """The request of ``watch`` is over; whether the watchdog had ended it."""
        with self._cond:
            self._watches.discard(watch)
            watch.conn = watch.sock = None
            return watch.expired

    def stop(self) -> None:
        """Let the thread end once no request is out (the session is closed or freed)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                wake = math.inf
                for watch in self._watches:
                    if watch.released:
                        continue
                    if watch.ends <= now:
                        watch.expired = True
                        _shut(watch)
                        wake = min(wake, now + OVERDUE_RECHECK)
                    else:
                        wake = min(wake, watch.ends)
                if not self._watches:
                    if self._stopping or now - self._last_used >= WATCHDOG_IDLE:
                        self._thread = None
                        self._wakes_at = math.inf
                        return
                    wake = self._last_used + WATCHDOG_IDLE
                self._wakes_at = wake
                self._cond.wait(max(0.0, wake - now) if math.isfinite(wake) else None)


class _AnswerNotedResponse(http.client.HTTPResponse):
    """Tells the request's watch once the first byte of the answer arrived, before the status
    line is parsed (urllib3 reads the whole body before its ``getresponse`` returns): a reset
    after that, even in the middle of the status line or after an interim ``100 Continue``,
    is an answer cut short, after Mixpanel may have applied the request."""

    def begin(self) -> None:
        watch = watch_of_thread()
        # peek waits for the first byte (or the end, or a reset: raised as begin would), and
        # leaves it to be parsed. Once per answer: begin returns at once when called again.
        if watch is not None and self.headers is None and self.fp.peek(1):
            watch.answered = True
        super().begin()

    def _read_status(self) -> tuple[str, int, str]:
        """The status line of the final answer: every interim (1xx) answer before it is
        skipped, with its headers. http.client skips only ``100 Continue``: a ``103 Early
        Hints`` from a CDN or proxy was taken as the answer, and the real one, still on its
        way, was then read by the next request on the connection as its own."""
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 100 <= status < 200:
                return version, status, reason
            if status == http.client.SWITCHING_PROTOCOLS:
                # Only an Upgrade asks for it, and no request of ours does: what follows is
                # not HTTP. Raised as a broken answer (its connection is closed, not reused).
                raise http.client.HTTPException(
                    "the server answered 101 Switching Protocols, which no request asks for"
                )
            http.client.parse_headers(self.fp)

    def read(self, amt: int | None = None) -> bytes:
        """The body, to ``MAX_ANSWER_BYTES`` at most (see ``answer_body``): urllib3 reads it
        whole (``amt`` None) before its request returns. A body of known length is read at
        once if within the bound and refused at once if not; a chunked one, or one that
        ends with the connection, is read piece by piece, to a piece past the bound."""
        if amt is not None:
            return super().read(amt)
        if self.length is not None:
            if self.length > MAX_ANSWER_BYTES:
                raise too_long(self.status, decoded=False)
            return super().read()
        pieces: list[bytes] = []
        length = 0
        while piece := super().read(READ_PIECE):
            length += len(piece)
            if length > MAX_ANSWER_BYTES:
                raise too_long(self.status, decoded=False)
            pieces.append(piece)
        return b"".join(pieces)


class _AnswerNoted:
    """Mixed into urllib3's connections: their answers say when they began (see
    ``_AnswerNotedResponse`` and ``http._resend_at_once``), and their socket is handed to the
    request's watch as soon as they connect (see ``Watch.sock``)."""

    response_class: type[http.client.HTTPResponse] = _AnswerNotedResponse

    # Why the two methods below: every socket call lets go of the interpreter lock, and a
    # sender thread gets it back from a thread busy tracking only when the switch interval
    # (5 ms) runs out. A request paid that five or six times (urllib3's check of the pooled
    # connection, the head, the body, the answer), and buffered_http's sender fell behind a
    # caller tracking at full speed. Writing the head with the body spares two of them.
    # (The check is kept: skipping it for a connection used moments ago made a server's
    # close cost an attempt over TLS or a proxy, where the failed write is no ProtocolError
    # for http._resend_at_once; review R50.)

    _head: bytes | None = None
    _holding_head = False

    def request(self, *args: Any, **kwargs: Any) -> None:
        """urllib3's request, its head (request line and headers) sent in one write with the
        body rather than in a write of its own (see ``send``)."""
        watch = watch_of_thread()
        if watch is not None:
            watch.written = False
        self._holding_head = True
        try:
            super().request(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._holding_head = False
            head, self._head = self._head, None
        if head is not None:  # a request without a body: the head alone
            super().send(head)  # type: ignore[misc]
        if watch is not None:
            watch.written = True

    def send(self, data: Any) -> None:
        if self._holding_head:
            if self._head is None:
                self._head = data  # urllib3 sends the head first, as endheaders() does
                return
            self._holding_head = False
            head, self._head = self._head, None
            if isinstance(data, bytes):
                data = head + data
            else:
                super().send(head)  # type: ignore[misc]
        super().send(data)  # type: ignore[misc]

    def __repr__(self) -> str:
        # urllib3 names the connection in its errors (refused, timed out), which reach
        # reports and dead letters: the server it talks to, not this class and an address.
        scheme = "https" if isinstance(self, urllib3.connection.HTTPSConnection) else "http"
        return f"{scheme}://{self.host}:{self.port}"  # type: ignore[attr-defined]

    __str__ = __repr__

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        watch = watch_of_thread()
        if watch is not None:
            watch.watchdog.connected(watch, self)


class _WatchedHTTPConnection(_AnswerNoted, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_AnswerNoted, urllib3.connection.HTTPSConnection):
    pass


class _WatchedPool:
    """Mixed into urllib3's pools: hands each request's connection to its watch (and so to
    the watch's watchdog), gives a request that must be made afresh a new connection, and
    takes a connection given back out of the watch before another request can take it."""

    def __str__(self) -> str:
        # urllib3 names the pool in its errors, which reach reports and dead letters: the
        # server it talks to, rather than this class's name (host and port, never a query).
        return f"{self.scheme}://{self.host}:{self.port}"  # type: ignore[attr-defined]

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        watch = watch_of_thread()
        if watch is not None:
            if watch.fresh and not conn.is_closed:
                # urllib3 does the same with a connection it finds dropped: it reconnects
                # (through the proxy's tunnel again, if any) when the request is made.
                conn.close()
            watch.reused = not conn.is_closed
            watch.answered = False
            watch.watchdog.attach(watch, conn)
        return conn

    def _put_conn(self, conn: Any) -> None:
        watch = watch_of_thread()
        if watch is not None and conn is not None:
            watch.watchdog.release(watch, conn)
        super()._put_conn(conn)  # type: ignore[misc]


class _WatchedHTTPConnectionPool(_WatchedPool, urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(_WatchedPool, urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


POOL_CLASSES: dict[str, type] = {
    "http": _WatchedHTTPConnectionPool,
    "https": _WatchedHTTPSConnectionPool,
}
"""urllib3's pool classes, watched: a ``PoolManager``'s ``pool_classes_by_scheme``. The
watchdog is the one of the request the thread is making (``this_thread.watch``)."""


def request_ceiling(connect: float, read: float) -> float:
    """The longest a request with these timeouts may take: ``connect`` to connect, then
    ``read`` to send its body and ``read`` again to receive the answer."""
    return connect + 2 * read
