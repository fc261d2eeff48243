"""The HTTP hop: one POST through a urllib3 connection pool, errors sorted into three kinds.

urllib3 directly rather than requests: the ingestion client needs only ``POST`` with bytes and
does its own retrying, and skipping requests' session machinery halves the cost of a request
(measured against the emulator: about 1,650 against 790 requests a second on one thread).
The environment variables that requests honours are honoured here too, read when the session
is built: the proxies (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``; see
``proxy_for``) and the certificate authorities to trust (``REQUESTS_CA_BUNDLE``, then
``CURL_CA_BUNDLE``; see ``ca_bundle``).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import os
import re
import ssl
import threading
import urllib.request
import weakref
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import certifi
import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
from urllib3.util.ssl_match_hostname import CertificateError

from mixpanel_core.errors import ConfigError
from mixpanel_core.ingestion.endpoints import is_loopback
from mixpanel_core.ingestion.request_watch import (
    POOL_CLASSES,
    Watch,
    Watchdog,
    request_ceiling,
    this_thread,
)
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.version import __version__


@attrs.frozen
class Response:
    """What classification needs of an answer."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]


class TlsError(Exception):
    """The certificate was refused, or client and server share no TLS version or cipher.

    Retrying will not fix it. A handshake cut short (the peer closed or reset the connection)
    is a ``NetworkError`` instead.
    """


class NetworkError(Exception):
    """A timeout, a refused or dropped connection, an answer cut short or that does not
    decode: worth another try with the same records."""


class ProxyAuthError(Exception):
    """The proxy answered 407 to ``CONNECT``: it wants credentials it was not given, or
    refused those it was. Retrying will not fix it. (Without a tunnel, for ``http://``, the
    407 is an answer like any other: see ``classify``.)"""


class RequestError(Exception):
    """Anything else that stopped the request from being made (a malformed URL, say)."""


# OpenSSL reasons that say client and server cannot agree, whatever the attempt: https:// to a
# plain-HTTP port, no TLS version or cipher in common. Any other ssl.SSLError (an EOF or a reset
# mid-handshake, a bad record) is what a restarting server or load balancer causes.
_PERMANENT_SSL_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "NO_CIPHERS_AVAILABLE",
    }
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: exceptions in its args, its __cause__ and __context__."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # urllib3 wraps the ssl exception as SSLError(e), so it sits in args, not __cause__.
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def tls_failure_is_permanent(exc: urllib3.exceptions.SSLError) -> bool:
    """Whether retrying cannot help: a certificate or hostname check failed, the two sides
    cannot agree on TLS, or urllib3 refused before any handshake (a CA bundle it cannot load,
    a fingerprint mismatch). A handshake interrupted by the peer is worth another try."""
    causes = list(_causes(exc))
    if any(isinstance(c, ssl.SSLCertVerificationError | CertificateError) for c in causes):
        return True
    ssl_errors = [c for c in causes if isinstance(c, ssl.SSLError)]
    if not ssl_errors:
        return True
    return any(e.reason in _PERMANENT_SSL_REASONS for e in ssl_errors)


CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""Where requests (and so the official SDK) looks for the authorities to trust, in order."""


def ca_bundle(environ: Mapping[str, str]) -> dict[str, str]:
    """urllib3's options for the authorities to trust when certificates are verified.

    As requests chooses them: ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE`` (an empty value
    counts as unset), a PEM file or a directory of hashed certificates (``c_rehash``); else
    certifi's bundle. Unlike requests, which fails each request with an ``OSError``, a path
    that does not exist, or a file that holds no certificate, is a ``ConfigError`` naming
    the variable, raised when the session is built.
    """
    for variable in CA_BUNDLE_VARIABLES:
        path = environ.get(variable)
        if path:
            break
    else:
        return {"ca_certs": certifi.where()}
    path = os.path.abspath(path)  # a later chdir() must not change what is trusted
    if os.path.isdir(path):
        return {"ca_cert_dir": path}
    if not os.path.exists(path):
        raise ConfigError(
            f"{variable}: {path!r} does not exist; point it at a file of CA certificates "
            "(PEM) or a directory of hashed ones, or unset it to trust certifi's bundle"
        )
    try:
        stat = os.stat(path)
        _check_ca_file(path, (stat.st_ino, stat.st_size, stat.st_mtime_ns))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{variable}: {path!r} holds no CA certificate that can be read ({exc}); it must "
            "be a file of PEM certificates or a directory of hashed ones"
        ) from exc
    return {"ca_certs": path}


@functools.lru_cache(maxsize=8)
def _check_ca_file(path: str, version: tuple[int, int, int]) -> None:
    """Load ``path`` as CA certificates once per version of the file (raises if it cannot).

    Loading the system's bundle takes about 20 ms, thirty times what building a client
    costs otherwise; clients built per web request must not pay it each time.
    """
    ssl.create_default_context(cafile=path)


def proxy_for(url: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy ``url`` goes through, from ``urllib.request.getproxies_environment()``.

    As requests chooses it: ``NO_PROXY`` (hosts, domain suffixes, networks, ``*``) first, then the
    scheme's variable, then ``ALL_PROXY``; a proxy without a scheme is ``http://``. Loopback
    is never proxied, whatever ``NO_PROXY`` says: plain http is allowed to it only because
    the data stays on this machine (and the emulator in tests lives there).
    """
    chosen = _proxy_variable(url, proxies)
    if chosen is None:
        return None
    proxy = proxies[chosen]
    return proxy if "://" in proxy else f"http://{proxy}"


def _proxy_variable(url: str, proxies: Mapping[str, str]) -> str | None:
    """The key of ``proxies`` (``https``, ``http``, ``all``) whose proxy ``url`` goes through."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    if _no_proxy(host, parts.port, proxies.get("no", "")):
        return None
    for key in (parts.scheme, "all"):
        if proxies.get(key):
            return key
    return None


def _split_proxy(proxy: str, variable: str) -> tuple[str, str | None]:
    """The proxy URL without its user info, and that user info (``None``: none).

    A URL urllib3 cannot parse is refused without quoting it, nor chaining urllib3's error,
    which quotes it: it may hold a password.
    """
    refusal = RequestError(
        f"the proxy URL in {variable} cannot be parsed (not shown: it may hold a "
        "password); a password with characters such as @ # / must be percent-encoded"
    )
    try:
        parsed = urllib3.util.parse_url(proxy)
    except urllib3.exceptions.LocationParseError:
        raise refusal from None
    # A proxy is a host and a port: anything after them is a password's unencoded / ? or #
    # that moved the rest of the URL out of the authority (``http://me:2024/pw@proxy:3128``
    # reads as host "me", port 2024), which would send every request to the wrong host and
    # quote the password in each error.
    if parsed.path not in (None, "", "/") or parsed.query is not None or parsed.fragment:
        raise refusal
    return parsed._replace(auth=None, path=None).url, parsed.auth


def _tunnel_status(exc: BaseException) -> int | None:
    """The status a proxy answered to ``CONNECT``, when that is why the tunnel failed."""
    for cause in _causes(exc):
        # http.client's wording, which urllib3 keeps: the only place the status is given.
        match = _TUNNEL_FAILED.match(str(cause))
        if match:
            return int(match.group(1))
    return None


_TUNNEL_FAILED = re.compile(r"Tunnel connection failed: (\d{3})\b")


def _no_proxy(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` names the host: ``*``, the host (with or without its port), a
    domain it is in (``example.com`` or ``.example.com``), or a network of its address."""
    host = host.lower()
    names = (host, f"{host}:{port}") if port is not None else (host,)
    for entry in no_proxy.split(","):
        name = entry.strip().lstrip(".").lower()
        if name == "*":
            return True
        if not name:
            continue
        if any(n == name or n.endswith(f".{name}") for n in names):
            return True
        if "/" in name and _in_network(host, name):
            return True
    return False


def _in_network(host: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except (ValueError, TypeError):
        return False


def _answer_never_started(exc: BaseException) -> bool:
    """Whether ``exc`` is the peer closing or resetting the connection, as opposed to an error
    of ours, a timeout or an answer cut short after it began (``Watch.answered`` tells the
    last apart)."""
    return any(
        isinstance(
            cause,
            http.client.RemoteDisconnected
            | ConnectionResetError
            | BrokenPipeError
            | ConnectionAbortedError,
        )
        for cause in _causes(exc)
    )


class HttpSession:
    """A pool of keep-alive connections, thread-safe, and new after ``fork()``.

    ``post`` returns a ``Response`` or raises ``TlsError``, ``ProxyAuthError``,
    ``NetworkError`` or ``RequestError`` (each ``from`` urllib3's own exception, but for a
    proxy URL that cannot be parsed: see ``_split_proxy``).
    """

    def __init__(self, pool_size: int, verify_tls: bool) -> None:
        self._pool_size = pool_size
        self._verify_tls = verify_tls
        # Read once, when the client is built: a wrong path is a ConfigError now, not a
        # failure of every request.
        self._tls: dict[str, Any] = (
            {"cert_reqs": "CERT_REQUIRED", **ca_bundle(os.environ)}
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
        key = _proxy_variable(url, self._proxies) or "all"
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
            shown, auth = _split_proxy(proxy, variable)
        except RequestError:
            return f"the proxy of {variable}"
        given = "with a user name and password" if auth else "without credentials"
        return f"the proxy {shown} (from {variable}, {given})"

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
        shown, auth = _split_proxy(proxy, variable)
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
    ) -> Response:
        """POST ``body``; the whole request ends within ``total`` seconds (default: the
        ``request_ceiling`` of ``timeout``), or raises a ``NetworkError`` saying it timed out.

        A request the peer ends before any byte of its answer, on a pooled connection that
        had carried an earlier request, is made again at once, once, on a new connection,
        within the same ``total`` (see ``_resend_at_once``).
        """
        if total is None:
            total = request_ceiling(*timeout)
        watch = self._watchdog.start(total)
        this_thread.watch = watch
        try:
            try:
                with _errors_sorted():
                    answer = self._request(url, body, headers, timeout, watch)
            finally:
                # Whatever ended it (a KeyboardInterrupt too): a watch left behind would keep
                # the watchdog waking to shut a socket nobody uses, for ever.
                this_thread.watch = None
                expired = self._watchdog.finish(watch)
        except Exception as exc:
            if expired:
                raise _timed_out(watch) from exc
            raise
        if expired:
            # A body that ends with the connection ends when the watchdog shuts it down,
            # without an error: what was read of it is not taken.
            raise _timed_out(watch)
        return Response(answer.status, answer.data, answer.headers)

    def _request(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        watch: Watch,
    ) -> Any:
        """urllib3's request, made a second time at once when ``_resend_at_once`` says so."""
        for fresh in (False, True):
            watch.fresh = fresh
            try:
                return self._request_on_open_pool(url, body, headers, timeout)
            except urllib3.exceptions.ProtocolError as exc:
                if fresh or not _resend_at_once(watch, exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_on_open_pool(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: tuple[float, float]
    ) -> Any:
        """urllib3's request, made again at once through a new pool when ``close()`` on
        another thread closed the one it took before it got a connection from it. A closed
        pool gives no connection, so nothing was sent; the session stays usable after
        ``close()``, and a post begun before it is not failed for it."""
        for again in (False, True):
            try:
                return self._route(url).request(
                    "POST",
                    url,
                    body=body,
                    headers={"User-Agent": f"mixpanel-core/{__version__}", **headers},
                    timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                    retries=False,
                    redirect=False,
                )
            except urllib3.exceptions.ClosedPoolError:
                if again:
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


@contextlib.contextmanager
def _errors_sorted() -> Iterator[None]:
    """urllib3's errors raised in the block, sorted into the session's own (see
    ``HttpSession``'s docstring)."""
    try:
        yield
    except urllib3.exceptions.ProxyError as exc:
        # The proxy could not be reached, or refused the tunnel: a network failure like
        # any other, unless it wants credentials (407), or it is TLS to an https://
        # proxy that cannot succeed.
        status = _tunnel_status(exc)
        if status == 407:
            raise ProxyAuthError(
                "the proxy refused the CONNECT tunnel: HTTP 407 Proxy Authentication Required"
            ) from exc
        cause = exc.original_error
        if isinstance(cause, urllib3.exceptions.SSLError) and tls_failure_is_permanent(cause):
            raise TlsError(f"proxy: {cause}") from exc
        raise NetworkError(f"ProxyError: {exc}") from exc
    except urllib3.exceptions.SSLError as exc:
        if tls_failure_is_permanent(exc):
            raise TlsError(str(exc)) from exc
        raise NetworkError(f"TLS connection interrupted: {exc}") from exc
    except (
        urllib3.exceptions.TimeoutError,
        urllib3.exceptions.NewConnectionError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.NameResolutionError,
        OSError,
    ) as exc:
        raise NetworkError(f"{type(exc).__name__}: {exc}") from exc
    except urllib3.exceptions.DecodeError as exc:
        # An answer whose Content-Encoding does not decode (mangled on the way, cut short)
        # shows no more than a 2xx without Mixpanel's success body: resend the records.
        raise NetworkError(f"the answer could not be decoded: {exc}") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise RequestError(f"{type(exc).__name__}: {exc}") from exc


def _timed_out(watch: Watch) -> NetworkError:
    return NetworkError(
        f"timed out: no complete answer {watch.total:.1f}s after the request was started "
        "(the connection was shut down; Mixpanel may still receive the request)"
    )


def _resend_at_once(watch: Watch, exc: urllib3.exceptions.ProtocolError) -> bool:
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
    """
    return watch.reused and not watch.answered and not watch.expired and _answer_never_started(exc)
