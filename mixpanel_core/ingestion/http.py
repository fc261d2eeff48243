"""The HTTP hop: one POST through a urllib3 connection pool, errors sorted into three kinds.

urllib3 directly rather than requests: the ingestion client needs only ``POST`` with bytes and
does its own retrying, and skipping requests' session machinery halves the cost of a request
(measured against the emulator: about 1,650 against 790 requests a second on one thread).
The proxy environment variables that requests honours (``HTTPS_PROXY``, ``HTTP_PROXY``,
``ALL_PROXY``, ``NO_PROXY``) are honoured here too (see ``proxy_for``).
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import certifi
import urllib3
import urllib3.exceptions
from urllib3.util.ssl_match_hostname import CertificateError

from mixpanel_core.ingestion.endpoints import is_loopback
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


def proxy_for(url: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy ``url`` goes through, from ``urllib.request.getproxies_environment()``.

    As requests chooses it: ``NO_PROXY`` (hosts, domain suffixes, networks, ``*``) first, then the
    scheme's variable, then ``ALL_PROXY``; a proxy without a scheme is ``http://``. Loopback
    is never proxied, whatever ``NO_PROXY`` says: plain http is allowed to it only because
    the data stays on this machine (and the emulator in tests lives there).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    if _no_proxy(host, parts.port, proxies.get("no", "")):
        return None
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


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


class HttpSession:
    """A pool of keep-alive connections, thread-safe, and new after ``fork()``.

    ``post`` returns a ``Response`` or raises ``TlsError``, ``NetworkError`` or
    ``RequestError`` (each ``from`` urllib3's own exception).
    """

    def __init__(self, pool_size: int, verify_tls: bool) -> None:
        self._pool_size = pool_size
        self._verify_tls = verify_tls
        self._start()
        in_fork_children(self, HttpSession._start)

    def _start(self) -> None:
        # Also run in a fork() child, before any other thread exists there: the parent's
        # sockets are not the child's, and a lock another parent thread held at fork() time
        # would stay held forever.
        self._lock = threading.Lock()
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        """One per proxy URL (``None``: direct)."""
        self._routes: dict[str, urllib3.PoolManager] = {}
        """The manager of each URL posted to: the proxy is chosen once per URL, not per post."""
        # Read once, rather than on every post: the environment the process runs with.
        self._proxies: dict[str, str] = urllib.request.getproxies_environment()

    def _pool(self, proxy: str | None = None) -> urllib3.PoolManager:
        """The connection pools through ``proxy`` (``None``: direct)."""
        manager = self._managers.get(proxy)
        if manager is None:
            with self._lock:
                manager = self._managers.get(proxy)
                if manager is None:
                    manager = self._managers[proxy] = self._new_manager(proxy)
        return manager

    def _route(self, url: str) -> urllib3.PoolManager:
        """The pools ``url`` is posted through: the proxy is chosen once per URL."""
        manager = self._routes.get(url)
        if manager is None:
            manager = self._routes[url] = self._pool(proxy_for(url, self._proxies))
        return manager

    def _new_manager(self, proxy: str | None) -> urllib3.PoolManager:
        tls: dict[str, Any] = {
            "cert_reqs": "CERT_REQUIRED" if self._verify_tls else "CERT_NONE",
            "ca_certs": certifi.where() if self._verify_tls else None,
        }
        headers = {"User-Agent": f"mixpanel-core/{__version__}"}
        if proxy is None:
            return urllib3.PoolManager(maxsize=self._pool_size, headers=headers, **tls)
        # urllib3 ignores the user info of a proxy URL: send it as Proxy-Authorization, as
        # requests does, and keep it out of the URL that urllib3 may name in its errors.
        parsed = urllib3.util.parse_url(proxy)
        proxy_headers: dict[str, str] = {}
        if parsed.auth:
            user, _, password = parsed.auth.partition(":")
            auth = f"{unquote(user)}:{unquote(password)}"
            proxy_headers = urllib3.util.make_headers(proxy_basic_auth=auth)
        return urllib3.ProxyManager(
            parsed._replace(auth=None).url,
            maxsize=self._pool_size,
            headers=headers,
            proxy_headers=proxy_headers,
            **tls,
        )

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: tuple[float, float]
    ) -> Response:
        try:
            answer = self._route(url).request(
                "POST",
                url,
                body=body,
                headers={"User-Agent": f"mixpanel-core/{__version__}", **headers},
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                retries=False,
                redirect=False,
            )
        except urllib3.exceptions.ProxyError as exc:
            # The proxy could not be reached, or refused the tunnel: a network failure like
            # any other, unless it is TLS to an https:// proxy that cannot succeed.
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
        return Response(answer.status, answer.data, answer.headers)

    def close(self) -> None:
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers, self._routes = {}, {}
