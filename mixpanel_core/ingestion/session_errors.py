"""The HTTP session's errors, and urllib3's sorted into them.

::

    TlsError        the certificate was refused, or TLS cannot be agreed: retrying will not fix it
    ProxyAuthError  the proxy answered 407 to CONNECT: retrying will not fix it
    NetworkError    a timeout, a refused or dropped connection, an answer cut short: try again
    RequestError    anything else that stopped the request from being made

``errors_sorted`` turns urllib3's exceptions into these, each raised ``from`` urllib3's own.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import ssl
from collections.abc import Iterator

import urllib3
import urllib3.exceptions
from urllib3.util.ssl_match_hostname import CertificateError

from mixpanel_core.chains import walked
from mixpanel_core.ingestion.answer_body import AnswerTooLongError
from mixpanel_core.ingestion.request_watch import Watch


class SessionError(Exception):
    """What ``HttpSession.post`` raises (one of the subclasses below)."""

    maybe_received = False
    """Whether the request may have reached Mixpanel, which may have applied it. Set by
    ``post`` for any error when a try before this one, made again at once on a new connection,
    may have been read (``Watch.sent_before``); a ``NetworkError`` also says it of itself."""


class TlsError(SessionError):
    """The certificate was refused, or client and server share no TLS version or cipher.

    Retrying will not fix it. A handshake cut short (the peer closed or reset the connection)
    is a ``NetworkError`` instead.
    """


class NetworkError(SessionError):
    """A timeout, a refused or dropped connection, an answer cut short or that does not
    decode: worth another try with the same records.

    ``maybe_received``: true unless no connection was made (it cannot have been sent); a read
    timeout, a connection lost after it was made, may have reached Mixpanel.
    """

    def __init__(self, text: str, *, maybe_received: bool = True) -> None:
        super().__init__(text)
        self.maybe_received = maybe_received


class ProxyAuthError(SessionError):
    """The proxy answered 407 to ``CONNECT``: it wants credentials it was not given, or
    refused those it was. Retrying will not fix it. (Without a tunnel, for ``http://``, the
    407 is an answer like any other: see ``classify``.)"""


class RequestError(SessionError):
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
    return walked(exc, _wrapped)


def _wrapped(exc: BaseException) -> list[BaseException | None]:
    # urllib3 wraps the ssl exception as SSLError(e), so it sits in args, not __cause__.
    return [
        *(arg for arg in exc.args if isinstance(arg, BaseException)),
        exc.__cause__,
        exc.__context__,
    ]


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


@contextlib.contextmanager
def errors_sorted() -> Iterator[None]:
    """urllib3's errors raised in the block, sorted into the session's own (see the module's
    docstring)."""
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
        # Not "nothing was sent": urllib3 calls any failure of a proxied connection "Unable to
        # connect to proxy" once the connection is closed (closing clears its mark of being
        # connected), also a request lost after it went out, which the proxy may have passed
        # on to Mixpanel. Whether a connection was made is the request's watch's to say
        # (``HttpSession.post`` sets False when none was).
        lost = _closed_by_peer(exc)
        if lost is not None:
            raise NetworkError(
                f"the connection to the proxy was closed or reset: {type(lost).__name__}: {lost}"
            ) from exc
        raise NetworkError(f"ProxyError: {exc}") from exc
    except urllib3.exceptions.SSLError as exc:
        if tls_failure_is_permanent(exc):
            raise TlsError(str(exc)) from exc
        raise NetworkError(f"TLS connection interrupted: {exc}") from exc
    except urllib3.exceptions.ConnectTimeoutError as exc:
        # No connection was made (refused, no such host, no answer to the handshake: the
        # subclasses NewConnectionError and NameResolutionError too): nothing was sent.
        raise NetworkError(f"{type(exc).__name__}: {exc}", maybe_received=False) from exc
    except (
        urllib3.exceptions.TimeoutError,
        urllib3.exceptions.ProtocolError,
        OSError,
    ) as exc:
        # A read timeout, or a connection lost part way: Mixpanel may have the request.
        raise NetworkError(f"{type(exc).__name__}: {exc}") from exc
    except AnswerTooLongError as exc:
        # Not Mixpanel's answer (see answer_body): what it says of the request is not known,
        # so the request is made again, as after a connection lost once it was made.
        raise NetworkError(str(exc)) from exc
    except urllib3.exceptions.DecodeError as exc:
        # An answer whose Content-Encoding does not decode (mangled on the way, cut short)
        # shows no more than a 2xx without Mixpanel's success body: resend the records.
        raise NetworkError(f"the answer could not be decoded: {exc}") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise RequestError(f"{type(exc).__name__}: {exc}") from exc


def timed_out(watch: Watch, sent: bool) -> NetworkError:
    """The error of a request the watchdog ended: no complete answer within its ``total``;
    ``sent``: whether it may have reached the server (``sent_perhaps``)."""
    ended = "the connection was shut down" if sent else "no connection had been made"
    return NetworkError(
        f"timed out: no complete answer {watch.total:.1f}s after the request was started ({ended})",
        maybe_received=sent,
    )


def sent_perhaps(watch: Watch) -> bool:
    """Whether the request of ``watch`` may have reached the server: it had a connection
    (connected, its TLS handshake done, or one kept alive from an earlier request), in this
    try or the one before it (``Watch.sent_before``), or its answer began. The last is not
    implied by the others: an answer cut short gives its (closed) connection back to the
    pool, which takes it out of the watch (``Watchdog.release``)."""
    return watch.sent_before or watch.reused or watch.sock is not None or watch.answered


def _tunnel_status(exc: BaseException) -> int | None:
    """The status a proxy answered to ``CONNECT``, when that is why the tunnel failed."""
    for cause in _causes(exc):
        # http.client's wording, which urllib3 keeps: the only place the status is given.
        match = _TUNNEL_FAILED.match(str(cause))
        if match:
            return int(match.group(1))
    return None


_TUNNEL_FAILED = re.compile(r"Tunnel connection failed: (\d{3})\b")


def answer_never_started(exc: BaseException) -> bool:
    """Whether ``exc`` is the peer closing or resetting the connection, as opposed to an error
    of ours, a timeout or an answer cut short after it began (``Watch.answered`` tells the
    last apart)."""
    return _closed_by_peer(exc) is not None


def _closed_by_peer(exc: BaseException) -> BaseException | None:
    """The peer's close or reset among what ``exc`` wraps, if it is one (see
    ``answer_never_started``)."""
    for cause in _causes(exc):
        if isinstance(
            cause,
            http.client.RemoteDisconnected
            | ConnectionResetError
            | BrokenPipeError
            | ConnectionAbortedError
            # Over TLS, a close met as the request is written: with or without close_notify.
            | ssl.SSLEOFError
            | ssl.SSLZeroReturnError,
        ):
            return cause
    return None
