"""Reading Mixpanel's answer: what became of each record of one request.

=========  ==================================================  =================================
verdict    when                                                 what the sender does
=========  ==================================================  =================================
ACCEPTED   2xx with the endpoint's success body (see below)     report every record accepted
PARTIAL    ``/import`` 400 (or 2xx) with ``failed_records``     reject those, accept the others
REJECTED   ``status: 0`` for one record; another 4xx            reject every record; no retry
UNNAMED    ``status: 0`` from ``/track``, ``/engage`` or        ``/track``: send the halves again
           ``/groups`` for several records: Mixpanel kept the   till the refused ones stand alone;
           valid ones and did not say which it refused          else reject all, saying so
RETRY      429, 5xx, 408; a 2xx without the success body;       back off, resend the same records
           timeouts, connection errors, a handshake cut short
TOO_LARGE  413                                                  split the batch, send the halves
AUTH       401, 403; 407 from a proxy, whether the answer to    stop: AuthenticationError
           the request (``http://``) or to its ``CONNECT``
           (``https://``, see ``proxy_refusal``)
FAILED     certificate refused, invalid URL; ``/import``        report failed; no retry
           imported fewer records than sent, not naming
           all the others as failed, or named records not
           in the request; a 3xx redirect (never followed:
           see below); 404, 405; 411, 415
=========  ==================================================  =================================

Success bodies: ``{"status": 1, ...}`` from ``/track``, ``/engage``, ``/groups`` (the client
always sends ``verbose=1``; a bare ``1`` is also taken), ``{"status": "OK", ...}`` from
``/import`` (``"status": 1`` with ``verbose=1``). A proxy, captive portal or maintenance page
answers 200 too: a 2xx without a success body does not show the records arrived. Nor does
an ``/import`` answer whose ``num_records_imported`` is there and not an integer (``"2"``,
``2.0``): Mixpanel counts with an integer, so it came from something else on the way.

Redirects are not followed: the request carries credentials and records, which go only where
``api_host`` / ``urls`` say. Mixpanel never judged the records, so they are FAILED (kept,
dead-lettered, read again by the forwarder), not REJECTED, and the reason says where the
answer pointed (scheme, host and path only). A 404 or 405 likewise says the URL is wrong (a
path override, a proxy), not the records: Mixpanel answers neither on its ingestion paths.
A 411 or 415 says something on the way would not take the request as framed (a proxy that
refuses ``Content-Encoding: gzip``, or a body without a length): resending the same bytes
cannot help, and the records were never judged, so they are FAILED, not REJECTED.

A 407 is a proxy's answer, never Mixpanel's: the proxy wants credentials it was not given, or
refused those it was (the user info of the proxy URL). Every request goes through the same
proxy with the same credentials, so retrying cannot help: it stops the call like a 401, and
the error says it is the proxy's credentials (``Classification.proxy_refused``).
"""

from __future__ import annotations

import datetime
import email.utils
import enum
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from mixpanel_core import wire


class Verdict(enum.Enum):
    """What one answer means for the whole request (see the module table)."""

    ACCEPTED = "accepted"
    PARTIAL = "partial"
    REJECTED = "rejected"
    UNNAMED = "unnamed"
    RETRY = "retry"
    TOO_LARGE = "too large"
    AUTH = "auth"
    FAILED = "failed"


@attrs.frozen
class RecordFailure:
    """One entry of ``failed_records``: a record Mixpanel refused, by its index in the batch."""

    index: int
    message: str
    field: str | None = None
    insert_id: str | None = None


@attrs.frozen
class Classification:
    """A classified answer (or network failure) for one request."""

    verdict: Verdict
    http_status: int | None = None
    reason: str | None = None
    retry_after: float | None = None
    failures: tuple[RecordFailure, ...] = ()
    maybe_received: bool = False
    """No answer came to a request that may have reached Mixpanel (a read timeout, a
    connection lost part way): it may have been applied, and a profile update sent again
    (retried, replayed) applied twice (see ``Call.doubt``)."""

    @property
    def rate_limited(self) -> bool:
        return self.http_status == 429

    @property
    def proxy_refused(self) -> bool:
        """An ``AUTH`` answer from a proxy (407), not from Mixpanel."""
        return self.verdict is Verdict.AUTH and self.http_status == PROXY_AUTH_REQUIRED


PROXY_AUTH_REQUIRED = 407

HEADERS_READ = ("Location", "Retry-After")
"""The only headers of an answer ``classify_response`` reads."""


def classify_response(
    endpoint: str,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    records: int | None = None,
) -> Classification:
    """Classify an HTTP answer from ``endpoint`` (headers as requests gives them).

    ``records`` is how many records the request carried; with it, an ``/import`` answer that
    counts fewer imported (and names none as failed) is not taken as success, and a
    ``status: 0`` for several records is ``UNNAMED`` rather than a rejection of them all.
    """
    if status in (401, 403):
        return Classification(Verdict.AUTH, status, _error_text(body) or f"HTTP {status}")
    if status == PROXY_AUTH_REQUIRED:
        text = _error_text(body) or "Proxy Authentication Required"
        return proxy_refusal(f"the proxy refused the request: HTTP 407 {text}")
    if 300 <= status < 400:
        return Classification(Verdict.FAILED, status, _redirect_reason(status, headers))
    if status in (404, 405):
        return Classification(Verdict.FAILED, status, _wrong_url_reason(status, body))
    if status in _FRAMING_REFUSED:
        return Classification(Verdict.FAILED, status, _framing_reason(status, body))
    if status == TOO_LARGE_STATUS:
        return Classification(Verdict.TOO_LARGE, status, _error_text(body) or "HTTP 413")
    if status in {429, 408} or status >= 500:
        return Classification(
            Verdict.RETRY,
            status,
            f"HTTP {status}: {_error_text(body) or 'no details'}",
            parse_retry_after(headers.get("Retry-After")),
        )
    parsed = _json(body)
    if 200 <= status < 300:
        return _classify_2xx(endpoint, status, body, parsed, headers, records)
    if status == 400 and isinstance(parsed, dict):
        failures = _failed_records(parsed.get("failed_records"))
        if failures:
            return _partial(status, body, parsed, failures, records)
    return Classification(Verdict.REJECTED, status, _error_text(body) or f"HTTP {status}")


def _classify_2xx(
    endpoint: str,
    status: int,
    body: bytes,
    parsed: Any,
    headers: Mapping[str, str],
    records: int | None,
) -> Classification:
    if _says_failed(parsed, body):
        reason = _error_text(body) or "status 0"
        if endpoint != "import" and records is not None and records > 1:
            # Mixpanel stored the valid records of the request and named none it refused.
            return Classification(Verdict.UNNAMED, status, reason)
        return Classification(Verdict.REJECTED, status, reason)
    if not _is_success(endpoint, parsed):
        # Not Mixpanel's answer, so nothing says the records arrived. Resending them is safe
        # (same $insert_id); if it never succeeds they are reported FAILED, not lost. Nor
        # does anything say they did not: a 2xx may be Mixpanel's own answer cut short (an
        # answer whose headers end with the connection reads as a 200 with no body), so
        # they may have been applied.
        return Classification(
            Verdict.RETRY,
            status,
            f"HTTP {status} without Mixpanel's success answer: {_quoted(body)}",
            parse_retry_after(headers.get("Retry-After")),
            maybe_received=True,
        )
    if endpoint != "import" or not isinstance(parsed, dict):
        return Classification(Verdict.ACCEPTED, status)
    failures = _failed_records(parsed.get("failed_records"))
    if failures:
        return _partial(status, body, parsed, failures, records)
    shortfall = _import_shortfall(parsed.get("num_records_imported"), records)
    if shortfall is not None:
        return Classification(Verdict.FAILED, status, shortfall)
    return Classification(Verdict.ACCEPTED, status)


def _partial(
    status: int,
    body: bytes,
    parsed: dict[str, Any],
    failures: tuple[RecordFailure, ...],
    records: int | None,
) -> Classification:
    """``PARTIAL`` when ``failed_records`` accounts for the request; else ``FAILED`` whole.

    The sender accepts every record the answer does not name, so a name that points at no
    record of the request (an index out of range), or a count of imported records that
    leaves some records neither imported nor named, would report refused records ACCEPTED:
    lost without a word. Which records failed then cannot be told, so none is reported
    ACCEPTED (resending is safe: Mixpanel deduplicates on ``$insert_id``).
    """
    reason = _error_text(body) or f"HTTP {status}"
    if records is None:
        return Classification(Verdict.PARTIAL, status, reason, failures=failures)
    named = {failure.index for failure in failures}
    outside = sorted(index for index in named if not 0 <= index < records)
    imported = parsed.get("num_records_imported")
    if outside:
        why = f"failed_records names record(s) {outside}, outside the {records} sent"
    elif type(imported) is int and imported + len(named) < records:
        why = (
            f"Mixpanel imported {imported} of {records} records and named {len(named)} as "
            "failed, so some were dropped without being named"
        )
    else:
        return Classification(Verdict.PARTIAL, status, reason, failures=failures)
    return Classification(
        Verdict.FAILED,
        status,
        f"{reason} ({why}; which records failed cannot be told, so none is taken as imported)",
    )


def proxy_refusal(reason: str) -> Classification:
    """A proxy answered 407 (to the request, or to the ``CONNECT`` of its tunnel)."""
    return Classification(Verdict.AUTH, PROXY_AUTH_REQUIRED, reason)


def network_failure(reason: str, *, maybe_received: bool = True) -> Classification:
    """A timeout or a connection error: always worth another try with the same records."""
    return Classification(Verdict.RETRY, None, reason, maybe_received=maybe_received)


TOO_LARGE_STATUS = 413
"""The status of a request body too large for the server: the batch is split."""

LONGEST_RETRY_AFTER = 3600.0
"""The longest ``Retry-After`` honoured: a longer one (a proxy's ``1e20``, a date in the year
9999) is taken as an hour, so the forwarder's next round, which waits at least that long, is
not parked until a restart."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date.

    Seconds are digits, as RFC 9110 writes them (``delay-seconds = 1*DIGIT``), or digits with
    a decimal fraction (``0.5``; the emulator sends those). Anything else (``inf``, ``nan``,
    ``1e3``, ``1_0``, ``-5``, words) is ignored, as if the header were absent: the usual
    backoff applies. HTTP dates are GMT, also in the forms that do not say so (``asctime``,
    ``-0000``), whatever the local time zone. At most ``LONGEST_RETRY_AFTER``.
    """
    if not value:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        # 309 digits and more are infinite as a float: capped like any other long wait.
        return min(float(value), LONGEST_RETRY_AFTER)
    if value[:1].isdigit() or value[:1] in "+-.":
        return None  # a number RFC 9110 does not allow, never a date
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return min(max(0.0, when.timestamp() - time.time()), LONGEST_RETRY_AFTER)


_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
"""What ``Retry-After`` may say in seconds: ASCII digits, with a decimal fraction or not."""


def _redirect_reason(status: int, headers: Mapping[str, str]) -> str:
    """Why a redirect ends the request, naming where it pointed but no query or user info."""
    location = headers.get("Location") or ""
    try:
        parts = urlsplit(location)
    except ValueError:
        parts = urlsplit("")
    host = parts.netloc.rpartition("@")[2]  # never the user info a Location might carry
    scheme = f"{parts.scheme}:" if parts.scheme else ""
    shown = f"{scheme}//{host}{parts.path}" if host else parts.path
    where = f" to {shown}" if shown else ""
    return (
        f"HTTP {status}: redirected{where}; redirects are not followed, so that credentials "
        "and records go only where configured: check mixpanel.api_host and mixpanel.urls"
    )


_FRAMING_REFUSED = frozenset({411, 415})
"""Length Required, Unsupported Media Type: answers to how the request was framed (its
length, its ``Content-Encoding``), not to its records, which Mixpanel's ingestion API takes
as the client sends them."""


def _framing_reason(status: int, body: bytes) -> str:
    return (
        f"HTTP {status}: {_error_text(body) or 'no details'}; the server did not take the "
        "request as it was sent (Mixpanel's ingestion API does): a proxy or server on the "
        "way refused it, so check mixpanel.api_host and mixpanel.urls, and set gzip = false "
        "if it refuses Content-Encoding: gzip"
    )


def _wrong_url_reason(status: int, body: bytes) -> str:
    return (
        f"HTTP {status}: {_error_text(body) or 'no details'}; the URL does not take these "
        "records (Mixpanel's ingestion paths answer neither 404 nor 405): check "
        "mixpanel.api_host and mixpanel.urls"
    )


def _json(body: bytes) -> Any:
    try:
        return wire.loads(body) if body else None
    except ValueError:
        return None


def _says_failed(parsed: Any, body: bytes) -> bool:
    # verbose=1 answers {"status": 1|0, ...}; without it the body is a bare 1 or 0.
    # /import answers {"status": "OK"} (or 1 with verbose) on success.
    if isinstance(parsed, dict):
        return parsed.get("status") in (0, "0")
    return parsed == 0 or body.strip() == b"0"


def _is_success(endpoint: str, parsed: Any) -> bool:
    """Whether ``parsed`` is the success body ``endpoint`` answers (see the module notes)."""
    status = parsed.get("status") if isinstance(parsed, dict) else None
    if endpoint == "import":
        # A count that is no integer (a string, a float): Mixpanel's never is, and the count
        # it is checked against could not be trusted to be one (see _import_shortfall).
        count_ok = not isinstance(parsed, dict) or _is_count(parsed, "num_records_imported")
        return (status == "OK" or _is_one(status)) and count_ok
    # /track, /engage, /groups: {"status": 1} with verbose=1, a bare 1 without it.
    return _is_one(status) or _is_one(parsed)


def _is_count(parsed: dict[str, Any], key: str) -> bool:
    """Whether ``parsed[key]`` is absent or an integer (not JSON ``true``, which is a bool)."""
    return key not in parsed or type(parsed[key]) is int


def _is_one(value: Any) -> bool:
    # Exactly the integer 1: JSON true or 1.0 is no answer Mixpanel gives.
    return type(value) is int and value == 1


def _import_shortfall(imported: Any, records: int | None) -> str | None:
    """Why an ``/import`` success is not one, or ``None``: it counted fewer records than sent.

    Without ``strict=1`` Mixpanel drops invalid records silently and leaves them out of the
    count. Which ones is unknown, and resending gets the same answer, so the whole request is
    reported FAILED (no retry), like any undelivered record. Sending them again later is safe:
    Mixpanel deduplicates the imported ones on ``$insert_id``.
    """
    if records is None or type(imported) is not int or imported >= records:
        return None
    return (
        f"Mixpanel imported {imported} of {records} records and did not say which were "
        "dropped (with strict=1 it names each invalid record)"
    )


_QUOTED_CHARS = 200
"""How much of an unexpected body a reason quotes: enough to recognise the page."""


def _quoted(body: bytes) -> str:
    """The start of ``body`` for a reason, whitespace collapsed, or that it was empty."""
    head = body[: _QUOTED_CHARS * 4]  # no character takes more than 4 bytes of UTF-8
    text = " ".join(head.decode("utf-8", "replace").split())
    if not text:
        return "empty body"
    if len(text) > _QUOTED_CHARS or len(head) < len(body):
        text = text[:_QUOTED_CHARS] + "..."
    return f"body {text!r}"


def _error_text(body: bytes) -> str | None:
    parsed = _json(body)
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return str(parsed["error"])
    # Not Mixpanel's JSON (a proxy's HTML page, say): its start, on one line, so that a
    # reason logged or dead-lettered is one line whatever the server sent.
    text = " ".join(body[:2000].decode("utf-8", "replace").split())
    return text[:500] or None


def _failed_records(value: Any) -> tuple[RecordFailure, ...]:
    if not isinstance(value, list):
        return ()
    failures = []
    for entry in value:
        # ``type(...) is int``: JSON true and false are bools, which isinstance takes for
        # ints, and would name records 1 and 0.
        if not isinstance(entry, dict) or type(entry.get("index")) is not int:
            continue
        insert_id = entry.get("insert_id", entry.get("$insert_id"))
        failures.append(
            RecordFailure(
                index=entry["index"],
                message=str(entry.get("message") or "failed validation"),
                field=entry.get("field") if isinstance(entry.get("field"), str) else None,
                insert_id=insert_id if isinstance(insert_id, str) else None,
            )
        )
    return tuple(failures)
