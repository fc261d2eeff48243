"""The ``/_emulator/`` API: read accepted records and stats, set faults, reset.

The same routes serve HTTP clients and the in-process ``Emulator`` methods, so the control API
is implemented once. Routes (all answer JSON)::

    GET  /_emulator/health
    GET  /_emulator/records?endpoint=track|engage|groups|import
    GET  /_emulator/insert_ids?endpoint=...
    GET  /_emulator/stats
    GET  /_emulator/faults
    POST /_emulator/faults   {"action": "fail_next" | "fail_fraction" | "latency" | "drop_next"
                              | "stall" | "release" | "clear", ...arguments}
    POST /_emulator/reset
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from mixpanel_core.emulator.config import ENDPOINTS
from mixpanel_core.emulator.faults import FaultPlan
from mixpanel_core.emulator.ingest import Reply
from mixpanel_core.emulator.store import RecordStore

_OK = orjson.dumps({"status": "ok"})
# Longer than any test waits, and short enough for time.sleep (1e300 overflows it).
MAX_LATENCY_SECONDS = 3600
# HTTP forbids a body in these answers (RFC 9110 sections 6.4.1 and 15.3.6), and a fault
# answer carries one; a 1xx (below the 200 allowed) is not even a final answer.
_BODILESS_STATUSES = frozenset({204, 205, 304})


class AdminError(Exception):
    """A control request is malformed; answered with 400 and this message."""


class AdminRoutes:
    """Dispatches one control request to the store or the fault plan."""

    def __init__(self, store: RecordStore, faults: FaultPlan) -> None:
        self._store = store
        self._faults = faults
        self._fault_actions: dict[str, Callable[[Mapping[str, Any]], None]] = {
            "fail_next": self._fail_next,
            "fail_fraction": self._fail_fraction,
            "latency": lambda args: faults.set_latency(_latency(args)),
            "drop_next": lambda args: faults.drop_next(
                _count(args),
                _endpoints(args.get("endpoints")),
                after_applying=_flag(args, "after_applying"),
            ),
            "stall": lambda args: faults.stall(),
            "release": lambda args: faults.release(),
            "clear": lambda args: faults.clear(),
        }

    def dispatch(self, method: str, path: str, query: Mapping[str, str], body: bytes) -> Reply:
        """Answer one control request."""
        try:
            return Reply(200, self._route(method, path.rstrip("/"), query, body))
        except AdminError as exc:
            return Reply(400, orjson.dumps({"error": str(exc)}))
        except LookupError:
            return Reply(404, orjson.dumps({"error": f"no route {method} {path}"}))

    def _route(self, method: str, path: str, query: Mapping[str, str], body: bytes) -> bytes:
        if method == "GET":
            if path == "/_emulator/health":
                return _OK
            if path == "/_emulator/records":
                return self._store.records_json(_endpoint(query))
            if path == "/_emulator/insert_ids":
                return orjson.dumps(self._store.insert_ids(_endpoint(query)))
            if path == "/_emulator/stats":
                return orjson.dumps(self._store.stats())
            if path == "/_emulator/faults":
                return orjson.dumps(self._faults.describe())
        elif method == "POST":
            if path == "/_emulator/faults":
                self._apply_fault(body)
                return orjson.dumps(self._faults.describe())
            if path == "/_emulator/reset":
                self._faults.clear()
                self._store.reset()
                return _OK
        raise LookupError(path)

    def _apply_fault(self, body: bytes) -> None:
        try:
            args = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError as exc:
            raise AdminError(f"body is not JSON: {exc}") from exc
        if not isinstance(args, dict):
            raise AdminError('body must be a JSON object like {"action": "fail_next", "n": 1}')
        name = args.get("action")
        if not isinstance(name, str) or name not in self._fault_actions:
            raise AdminError("'action' must be one of " + ", ".join(self._fault_actions))
        self._fault_actions[name](args)

    def _fail_next(self, args: Mapping[str, Any]) -> None:
        self._faults.fail_next(
            _count(args),
            _status(args.get("status", 500), "status"),
            _endpoints(args.get("endpoints")),
            _optional_number(args, "retry_after"),
        )

    def _fail_fraction(self, args: Mapping[str, Any]) -> None:
        probability = _number(args, "p")
        if not 0 <= probability <= 1:
            raise AdminError("'p' must be between 0 and 1")
        statuses = args.get("statuses", [429, 500])
        if not isinstance(statuses, list) or not statuses:
            raise AdminError("'statuses' must be a non-empty list of HTTP statuses")
        seed = args.get("seed")
        # bool is an int to isinstance, and JSON's true is no seed.
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise AdminError("'seed' must be an integer")
        self._faults.fail_fraction(
            probability,
            [_status(status, "statuses") for status in statuses],
            seed,
            _endpoints(args.get("endpoints")),
            _optional_number(args, "retry_after"),
        )


def _endpoint(query: Mapping[str, str]) -> str | None:
    name = query.get("endpoint")
    if name is None or name == "":
        return None
    name = name.strip("/")
    if name not in ENDPOINTS:
        raise AdminError("'endpoint' must be one of " + ", ".join(ENDPOINTS))
    return name


def _endpoints(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or any(
        not isinstance(name, str) or name.strip("/") not in ENDPOINTS for name in value
    ):
        raise AdminError("'endpoints' must be a list drawn from " + ", ".join(ENDPOINTS))
    return value


def _count(args: Mapping[str, Any]) -> int:
    count = args.get("n")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise AdminError("'n' must be a whole number of requests, 0 or more")
    return count


def _flag(args: Mapping[str, Any], key: str) -> bool:
    value = args.get(key, False)
    if not isinstance(value, bool):
        raise AdminError(f"'{key}' must be true or false")
    return value


def _status(value: object, field: str) -> int:
    if not isinstance(value, int) or not 200 <= value <= 599 or value in _BODILESS_STATUSES:
        raise AdminError(
            f"'{field}': {value!r} is not an HTTP status of 200-599 that carries a body"
            " (a fault answer has a JSON body; 204, 205 and 304 have none)"
        )
    return value


def _latency(args: Mapping[str, Any]) -> float:
    seconds = _number(args, "seconds")
    if seconds > MAX_LATENCY_SECONDS:
        raise AdminError(f"'seconds' must be at most {MAX_LATENCY_SECONDS} (an hour)")
    return seconds


def _number(args: Mapping[str, Any], key: str) -> float:
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise AdminError(f"'{key}' must be a number, 0 or more")
    return float(value)


def _optional_number(args: Mapping[str, Any], key: str) -> float | None:
    return None if args.get(key) is None else _number(args, key)
