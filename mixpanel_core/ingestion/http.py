"""The HTTP hop: one POST through a urllib3 connection pool, its errors sorted into the
session's own (see ``session_errors``).

urllib3 directly rather than requests: the ingestion client needs only ``POST`` with bytes and
does its own retrying, and skipping requests' session machinery halves the cost of a request
(measured against the emulator: about 1,650 against 790 requests a second on one thread).
The environment variables that requests honours are honoured here too, read when the session
is built: the proxies (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``; see
``proxies``) and the certificate authorities to trust (``REQUESTS_CA_BUNDLE``, then
``CURL_CA_BUNDLE``, unless ``[mixpanel] ca_bundle`` names them; see ``ca_bundle``).
"""

from __future__ import annotations

import os
import threading
import urllib.request
import weakref
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

import attrs
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from mixpanel_core.ingestion.answer_body import decoded
from mixpanel_core.ingestion.auth import basic
from mixpanel_core.ingestion.ca_bundle import ca_bundle
from mixpanel_core.ingestion.proxies import proxy_for, proxy_variable, split_proxy
from mixpanel_core.ingestion.request_watch import (
    POOL_CLASSES,
    Watch,
    Watchdog,
    request_ceiling,
    this_thread,
)
from mixpanel_core.ingestion.session_errors import (
    NetworkError,
    RequestError,
    SessionError,
    answer_never_started,
    errors_sorted,
    sent_perhaps,
    timed_out,
)
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.version import __version__


@attrs.frozen
class Response:
    """What classification needs of an answer."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]
    maybe_received_before: bool = False
    """Whether a try before the one answered, made again at once on a new connection, may
    have been read and applied (``Watch.sent_before``): whatever the answer says of this try,
    the records may be applied already."""


CLOSED_POOL_TRIES = 8
"""Tries of a post that meets pools ``close()`` closed on other threads before it took a
connection (see ``HttpSession._request_on_open_pool``)."""


class HttpSession:
    """A pool of keep-alive connections, thread-safe, and new after ``fork()``.

    ``post`` returns a ``Response`` or raises ``TlsError``, ``ProxyAuthError``,
    ``NetworkError`` or ``RequestError`` (each ``from`` urllib3's own exception, but for a
    proxy URL that cannot be parsed: see ``proxies.split_proxy``).
    """

    def __init__(self, pool_size: int, verify_tls: bool, ca_bundle_path: str | None = None) -> None:
        self._pool_size = pool_size
        self._verify_tls = verify_tls
        # Read once, when the client is built: a wrong path is a ConfigError now, not a
        # failure of every request.
        self._tls: dict[str, Any] = (
            {"cert_reqs": "CERT_REQUIRED", **ca_bundle(os.environ, ca_bundle_path)}
            if verify_tls
            else {"cert_reqs": "CERT_NONE"}
        )
        self._start()
        in_fork_children(self, HttpSession._start)

    def _start(self) -> None:
        # Also run in a fork() child, before any other thread exists there: the parent's
        # sockets are not the child's, and a lock another parent thread held at fork() time
        # would stay held forever.
        self._lock = threading.Lock()
        self._watchdog = Watchdog()
        # The thread of a session freed without close() ends too (it holds no reference
        # to the session).
        weakref.finalize(self, self._watchdog.stop)
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        """One per proxy URL (``None``: direct)."""
        self._pools: list[urllib3.connectionpool.HTTPConnectionPool] = []
        """Every pool the managers of ``_managers`` made, for ``close`` (see ``_PoolsListed``)."""
        self._routes: dict[str, urllib3.PoolManager] = {}
        """The manager of each URL posted to: the proxy is chosen once per URL, not per post."""
        # Read once, rather than on every post: the environment the process runs with.
        self._proxies: dict[str, str] = urllib.request.getproxies_environment()

    def _route(self, url: str) -> urllib3.PoolManager:
        """The pools ``url`` is posted through: the proxy is chosen once per URL, and there is
        one manager of pools per proxy (``None``: direct)."""
        manager = self._routes.get(url)
        if manager is None:
            proxy = proxy_for(url, self._proxies)
            variable = self._variable(url) if proxy is not None else ""
            # Saved under the lock ``close()`` takes: a route saved as ``close()`` drops the
            # managers would keep one whose pools it closed, and every later post to ``url``
            # would fail at once on a closed pool.
            with self._lock:
                manager = self._routes.get(url)
                if manager is None:
                    manager = self._managers.get(proxy)
                    if manager is None:
                        manager = self._managers[proxy] = self._new_manager(proxy, variable)
                    self._routes[url] = manager
        return manager

    def _variable(self, url: str) -> str:
        """The name of the variable that gives ``url`` its proxy (for messages)."""
        key = proxy_variable(url, self._proxies) or "all"
        return f"{key.upper()}_PROXY"

    def describe_proxy(self, url: str) -> str | None:
        """The proxy ``url`` is posted through, as a message may name it: its URL without
        user info, the variable it comes from and whether it carries credentials (never
        which); ``None`` when ``url`` is posted directly."""
        proxy = proxy_for(url, self._proxies)
        if proxy is None:
            return None
        variable = self._variable(url)
        try:
            shown, auth = split_proxy(proxy, variable)
        except RequestError:
            return f"the proxy of {variable}"
        given = "with a user name and password" if auth else "without credentials"
        return f"the proxy {shown} (from {variable}, {given})"

    def proxy_credentials(self, url: str) -> dict[str, str]:
        """The credentials of the proxy ``url`` is posted through (each value: where it comes
        from), for the redactor: a proxy's error page may quote the ``Proxy-Authorization``
        it was sent, and what an answer says goes into reports, logs and dead letters. Only
        that proxy's: a short password would rewrite the answers of every other URL too."""
        proxy = proxy_for(url, self._proxies)
        if proxy is None:
            return {}
        variable = self._variable(url)
        try:
            _, auth = split_proxy(proxy, variable)
        except RequestError:
            return {}  # each post through it fails, quoting nothing of it
        if not auth:
            return {}
        user, _, password = (unquote(part) for part in auth.partition(":"))
        found: dict[str, str] = {}
        if password:
            found[password] = f"{variable} password"
        encoded = basic(user, password).reveal().removeprefix("Basic ")
        found.setdefault(encoded, f"{variable} credentials (Basic)")
        return found

    def _new_manager(self, proxy: str | None, variable: str) -> urllib3.PoolManager:
        manager = self._unwatched_manager(proxy, variable)
        # Every pool it makes is watched (see ``Watchdog``); PoolManager reads this
        # attribute each time it makes a pool.
        manager.pool_classes_by_scheme = POOL_CLASSES
        manager.pools_made = self._pools
        return manager

    def _unwatched_manager(
        self, proxy: str | None, variable: str
    ) -> _ListedPoolManager | _ListedProxyManager:
        headers = {"User-Agent": f"mixpanel-core/{__version__}"}
        if proxy is None:
            return _ListedPoolManager(maxsize=self._pool_size, headers=headers, **self._tls)
        # urllib3 ignores the user info of a proxy URL: send it as Proxy-Authorization, as
        # requests does, and keep it out of the URL that urllib3 may name in its errors.
        shown, auth = split_proxy(proxy, variable)
        proxy_headers: dict[str, str] = {}
        if auth:
            user, _, password = auth.partition(":")
            credentials = f"{unquote(user)}:{unquote(password)}"
            proxy_headers = urllib3.util.make_headers(proxy_basic_auth=credentials)
        return _ListedProxyManager(
            shown,
            maxsize=self._pool_size,
            headers=headers,
            proxy_headers=proxy_headers,
            **self._tls,
        )

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        total: float | None = None,
        counted_once: Callable[[], bool] = lambda: False,
    ) -> Response:
        """POST ``body``; the whole request ends within ``total`` seconds (default: the
        ``request_ceiling`` of ``timeout``), or raises a ``NetworkError`` saying it timed out.

        A request the peer ends before any byte of its answer, on a pooled connection that
        had carried an earlier request, is made again at once, once, on a new connection,
        within the same ``total`` (see ``_resend_at_once``). ``counted_once``: whether
        Mixpanel counts the request's records once however often they arrive (events with
        an ``$insert_id`` and a ``time``), asked only then; when not (profile updates), only
        a request whose writing the close broke is made again so, as the server cannot have
        applied it.
        """
        if total is None:
            total = request_ceiling(*timeout)
        watch = self._watchdog.start(total)
        this_thread.watch = watch
        try:
            try:
                with errors_sorted():
                    answer = self._request(url, body, headers, timeout, watch, counted_once)
                    coding = answer.headers.get("Content-Encoding")
                    content = decoded(answer.data, coding, answer.status)
            finally:
                # Whatever ended it (a KeyboardInterrupt too): a watch left behind would keep
                # the watchdog waking to shut a socket nobody uses, for ever.
                this_thread.watch = None
                sent = sent_perhaps(watch)  # read before finish lets go of the connection
                expired = self._watchdog.finish(watch)
        except Exception as exc:
            if expired:
                raise timed_out(watch, sent) from exc
            if isinstance(exc, SessionError) and watch.sent_before:
                # The try before may have been applied, whatever ended this one (its
                # connection refused, its TLS handshake cut short or its certificate refused,
                # a proxy refusing its credentials).
                exc.maybe_received = True
            elif isinstance(exc, NetworkError) and not sent:
                exc.maybe_received = False  # no connection was made (a cut TLS handshake)
            raise
        if expired:
            # A body that ends with the connection ends when the watchdog shuts it down,
            # without an error: what was read of it is not taken.
            raise timed_out(watch, sent)
        return Response(answer.status, content, answer.headers, watch.sent_before)

    def _request(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        watch: Watch,
        counted_once: Callable[[], bool],
    ) -> Any:
        """urllib3's request, made a second time at once when ``_resend_at_once`` says so."""
        for fresh in (False, True):
            watch.fresh = fresh
            try:
                return self._request_on_open_pool(url, body, headers, timeout)
            # The same close comes as a ProxyError on a proxied connection, and as an
            # SSLError over TLS when it is met writing the request.
            except (
                urllib3.exceptions.ProtocolError,
                urllib3.exceptions.ProxyError,
                urllib3.exceptions.SSLError,
            ) as exc:
                if fresh or not _resend_at_once(watch, exc, counted_once):
                    raise
                # Made on a connection that had carried a request: a server that read and
                # applied it, then went down (a restart), is not told from an idle close.
                # Only if the whole request had been written: a send the close broke left
                # part of it unsent, which the server cannot have applied.
                watch.sent_before = watch.sent_before or watch.written
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_on_open_pool(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: tuple[float, float]
    ) -> Any:
        """urllib3's request, made again at once through a new pool when ``close()`` on
        another thread closed the one it took before it got a connection from it. A closed
        pool gives no connection, so nothing was sent; the session stays usable after
        ``close()``, and a post begun before it is not failed for it.

        Each new try meets a closed pool only if yet another ``close()`` came in between (a
        route is saved under ``close()``'s lock, so none is left to a closed pool): the tries
        are bounded all the same, so that what cannot happen cannot loop either.
        """
        for tries_left in range(CLOSED_POOL_TRIES - 1, -1, -1):
            try:
                return self._route(url).request(
                    "POST",
                    url,
                    body=body,
                    headers={"User-Agent": f"mixpanel-core/{__version__}", **headers},
                    timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                    retries=False,
                    redirect=False,
                    decode_content=False,  # decoded by ``post``, to a bound (see answer_body)
                )
            except urllib3.exceptions.ClosedPoolError:
                if not tries_left:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every connection now: the idle ones at once, those of requests still out as
        each ends (a closed pool takes no connection back). The session stays usable: a later
        ``post`` opens new ones.

        The pools are closed here rather than left to ``PoolManager.clear()``, which in
        urllib3 2 only forgets them: their connections close when the pool is freed. A request
        that failed inside urllib3 (a dropped connection, a timeout) leaves its pool in a
        reference cycle (the exception's traceback holds urllib3's frame, which holds the
        exception), so every idle connection of that pool stayed open after ``close()`` until
        the garbage collector ran.
        """
        with self._lock:
            # A manager dropped here that a request took before the lock may still make a
            # pool: it goes into the list dropped with it, and closes when they are freed.
            pools, self._pools = self._pools, []
            self._managers, self._routes = {}, {}
        for pool in pools:
            pool.close()
        self._watchdog.stop()


class _PoolsListed:
    """Mixed into urllib3's pool managers: every pool a manager makes is appended to
    ``pools_made``, the session's list, for ``HttpSession.close`` to close."""

    pools_made: list[urllib3.connectionpool.HTTPConnectionPool]

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> urllib3.connectionpool.HTTPConnectionPool:
        pool: urllib3.connectionpool.HTTPConnectionPool = super()._new_pool(  # type: ignore[misc]
            scheme, host, port, request_context
        )
        self.pools_made.append(pool)
        return pool


class _ListedPoolManager(_PoolsListed, urllib3.PoolManager):
    pass


class _ListedProxyManager(_PoolsListed, urllib3.ProxyManager):
    pass


def _resend_at_once(
    watch: Watch, exc: urllib3.exceptions.HTTPError, counted_once: Callable[[], bool]
) -> bool:
    """Whether a request that failed with ``exc`` is made again at once, once, on a new
    connection, without counting as an attempt or waiting for a backoff.

    Only when the pooled connection it was made on had carried an earlier request, and the
    peer closed or reset it before any byte of the answer arrived (not even part of a status
    line, nor an interim ``100 Continue``). That is the race every keep-alive client meets:
    the server (or a load balancer) closes a connection it holds idle, as its keep-alive
    timeout or request count says, while the next request is already on its way. A server
    closes only a connection it holds idle, between requests, so the request it never read
    was not processed, and sending it again cannot apply it twice. (It would be resent anyway
    by the usual retry, after a backoff: this one spares an attempt that ``max_retries`` or
    ``retry_budget`` may not allow.) On a new connection, or once any byte of the answer
    arrived (part of a status line, a ``100 Continue``, a body cut short), or after the
    watchdog ended the request, the request may have been processed: it is left to the usual
    retry policy.

    The one case that cannot be told from an idle close: a server that read the request
    whole, applied it, then closed the connection without a byte of answer (a restart). For
    records Mixpanel counts once (``counted_once``: events with an ``$insert_id`` and a
    ``time``) the resend costs nothing; a profile update (``$add``) would be applied twice,
    under ``max_retries = 0`` too (review R57 F1), and an event without them counted twice
    (review R58 F2). So any other request is made again at once only when the close broke
    its writing (``Watch.written`` false): the rest is left to the
    retry policy, which counts the attempt and says that Mixpanel may have applied it.
    """
    return (
        watch.reused
        and not watch.answered
        and not watch.expired
        and answer_never_started(exc)
        and (not watch.written or counted_once())  # asked last: it may read every record
    )
