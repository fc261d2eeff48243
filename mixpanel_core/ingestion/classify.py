"""Reading Mixpanel's answer: what became of each record of one request.

=========  ==================================================  =================================
verdict    when                                                 what the sender does
=========  ==================================================  =================================
ACCEPTED   2xx (``status: 1`` when verbose)                     report every record accepted
PARTIAL    ``/import?strict=1`` 400 with ``failed_records``     reject those, accept the others
REJECTED   ``status: 0``; another 4xx                           reject every record; no retry
RETRY      429, 5xx, 408; timeouts, connection errors           back off, resend the same records
TOO_LARGE  413                                                  split the batch, send the halves
AUTH       401, 403                                             stop: AuthenticationError
FAILED     TLS failure, invalid URL (no answer worth waiting for)   report failed; no retry
=========  ==================================================  =================================
"""

from __future__ import annotations

import email.utils
import enum
import time
from collections.abc import Mapping
from typing import Any

import attrs

from mixpanel_core import wire


class Verdict(enum.Enum):
    """What one answer means for the whole request (see the module table)."""

    ACCEPTED = "accepted"
    PARTIAL = "partial"
    REJECTED = "rejected"
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

    @property
    def rate_limited(self) -> bool:
        return self.http_status == 429


def classify_response(
    endpoint: str, status: int, body: bytes, headers: Mapping[str, str]
) -> Classification:
    """Classify an HTTP answer from ``endpoint`` (headers as requests gives them)."""
    if status in (401, 403):
        return Classification(Verdict.AUTH, status, _error_text(body) or f"HTTP {status}")
    if status == 413:
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
        if _says_failed(parsed, body):
            return Classification(Verdict.REJECTED, status, _error_text(body) or "status 0")
        return Classification(Verdict.ACCEPTED, status)
    if status == 400 and isinstance(parsed, dict):
        failures = _failed_records(parsed.get("failed_records"))
        if failures:
            return Classification(
                Verdict.PARTIAL, status, _error_text(body) or "HTTP 400", failures=failures
            )
    return Classification(Verdict.REJECTED, status, _error_text(body) or f"HTTP {status}")


def network_failure(reason: str) -> Classification:
    """A timeout or a connection error: always worth another try with the same records."""
    return Classification(Verdict.RETRY, None, reason)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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


def _error_text(body: bytes) -> str | None:
    parsed = _json(body)
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return str(parsed["error"])
    text = body.decode("utf-8", "replace").strip()
    return text[:500] or None


def _failed_records(value: Any) -> tuple[RecordFailure, ...]:
    if not isinstance(value, list):
        return ()
    failures = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
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
