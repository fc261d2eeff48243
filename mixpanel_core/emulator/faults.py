"""Injected faults: failed, dropped, delayed and stalled requests, decided one request at a time."""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

import orjson

from mixpanel_core.emulator.payload import too_large_body

# What Mixpanel says with each status; others fall back to the standard reason phrase.
_ERROR_TEXT = {
    429: "Project exceeded rate limits. Please retry the request with exponential backoff.",
    500: "Internal server error; retry the request with backoff.",
    502: "Bad gateway; retry the request with backoff.",
    503: "Service temporarily unavailable; retry the request with backoff.",
    504: "Gateway timeout; retry the request with backoff.",
}


INJECTED_STATUS_0 = "injected failure: no record of the request was applied"
"""The ``error`` of an injected 2xx answer."""


def fault_body(status: int, *, max_body_bytes: int) -> bytes:
    """A Mixpanel-like JSON error body for an injected ``status``; a 413 says what the
    emulator's own does, naming its ``max_body_bytes``; a 2xx is the one failure Mixpanel
    answers with success's status, ``{"status": 0, "error": ...}`` (a body of success, such
    as ``"status": "OK"``, would make a client take records nobody stored for imported)."""
    if status == 413:
        return too_large_body(max_body_bytes)
    if 200 <= status < 300:
        return orjson.dumps({"status": 0, "error": INJECTED_STATUS_0})
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return orjson.dumps(
        {"code": status, "error": _ERROR_TEXT.get(status, phrase), "status": phrase}
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one ingestion request."""

    action: Literal["serve", "fail", "drop", "apply_then_drop"]
    status: int = 200
    retry_after: float | None = None


_SERVE = Verdict("serve")


@dataclass(slots=True)
class _FailRule:
    remaining: int
    status: int
    endpoints: frozenset[str] | None
    retry_after: float | None
    after_applying: bool = False

    def matches(self, endpoint: str) -> bool:
        return self.endpoints is None or endpoint in self.endpoints


@dataclass(slots=True)
class _FractionRule:
    probability: float
    statuses: tuple[int, ...]
    rng: random.Random
    endpoints: frozenset[str] | None
    retry_after: float | None


class FaultPlan:
    """Thread-safe fault settings; ``verdict`` consumes them one request at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._released = threading.Event()
        # A count of request threads waiting right now, not a setting: clear() leaves it to
        # the threads it releases, each of which takes itself off as it leaves.
        self._stalled_requests = 0
        self.clear()

    def clear(self) -> None:
        """Remove every fault and release stalled requests."""
        with self._lock:
            self._fail: deque[_FailRule] = deque()
            self._drop: deque[_FailRule] = deque()
            self._fraction: _FractionRule | None = None
            self._latency = 0.0
        self._released.set()

    def fail_next(
        self,
        count: int,
        status: int,
        endpoints: Iterable[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Fail the next ``count`` matching requests; queued after earlier fail_next calls."""
        if count <= 0:
            return
        rule = _FailRule(count, status, _endpoint_set(endpoints), retry_after)
        with self._lock:
            self._fail.append(rule)

    def drop_next(
        self, count: int, endpoints: Iterable[str] | None = None, *, after_applying: bool = False
    ) -> None:
        """Close the connection of the next ``count`` matching requests without answering;
        ``after_applying``: once each is handled as usual (its records kept), as a server or
        proxy that fails between applying a request and answering it."""
        if count <= 0:
            return
        rule = _FailRule(count, 0, _endpoint_set(endpoints), None, after_applying)
        with self._lock:
            self._drop.append(rule)

    def fail_fraction(
        self,
        probability: float,
        statuses: Iterable[int],
        seed: int | None = None,
        endpoints: Iterable[str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Fail each request with ``probability``, status drawn from ``statuses``; p=0: off."""
        choices = tuple(statuses)
        with self._lock:
            self._fraction = (
                _FractionRule(
                    probability, choices, random.Random(seed), _endpoint_set(endpoints), retry_after
                )
                if probability > 0 and choices
                else None
            )

    def set_latency(self, seconds: float) -> None:
        """Delay every ingestion request by ``seconds`` before handling it."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def stall(self) -> None:
        """Hold ingestion requests (before their body is read) until ``release``."""
        self._released.clear()

    def release(self) -> None:
        """Let stalled requests, and later ones, through."""
        self._released.set()

    @property
    def latency(self) -> float:
        """Seconds added to every ingestion request."""
        return self._latency

    def wait_if_stalled(self) -> None:
        """Block the calling request thread while the plan is stalled."""
        if self._released.is_set():
            return
        with self._lock:
            self._stalled_requests += 1
        try:
            self._released.wait()
        finally:
            with self._lock:
                self._stalled_requests -= 1

    def verdict(self, endpoint: str) -> Verdict:
        """Decide, and consume, the fault for one request to ``endpoint``."""
        with self._lock:
            dropped = _take(self._drop, endpoint)
            if dropped is not None:
                return Verdict("apply_then_drop" if dropped.after_applying else "drop")
            rule = _take(self._fail, endpoint)
            if rule is not None:
                return Verdict("fail", rule.status, rule.retry_after)
            fraction = self._fraction
            if (
                fraction is not None
                and (fraction.endpoints is None or endpoint in fraction.endpoints)
                and fraction.rng.random() < fraction.probability
            ):
                status = fraction.rng.choice(fraction.statuses)
                return Verdict("fail", status, fraction.retry_after)
        return _SERVE

    def describe(self) -> dict[str, Any]:
        """The current settings as JSON-able data."""
        with self._lock:
            fraction = self._fraction
            return {
                "fail_next": [_describe_rule(rule, with_status=True) for rule in self._fail],
                "drop_next": [_describe_rule(rule, with_status=False) for rule in self._drop],
                "fail_fraction": None
                if fraction is None
                else {
                    "p": fraction.probability,
                    "statuses": list(fraction.statuses),
                    "endpoints": _sorted_or_none(fraction.endpoints),
                    "retry_after": fraction.retry_after,
                },
                "latency": self._latency,
                "stalled": not self._released.is_set(),
                "stalled_requests": self._stalled_requests,
            }


def _take(rules: deque[_FailRule], endpoint: str) -> _FailRule | None:
    """Consume one use of the first rule matching ``endpoint``."""
    for rule in rules:
        if rule.matches(endpoint):
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.remove(rule)
            return rule
    return None


def _endpoint_set(endpoints: Iterable[str] | None) -> frozenset[str] | None:
    if endpoints is None:
        return None
    return frozenset(name.strip("/") for name in endpoints)


def _sorted_or_none(endpoints: frozenset[str] | None) -> list[str] | None:
    return None if endpoints is None else sorted(endpoints)


def _describe_rule(rule: _FailRule, *, with_status: bool) -> dict[str, Any]:
    described: dict[str, Any] = {
        "remaining": rule.remaining,
        "endpoints": _sorted_or_none(rule.endpoints),
    }
    if with_status:
        described["status"] = rule.status
        described["retry_after"] = rule.retry_after
    else:
        described["after_applying"] = rule.after_applying
    return described
