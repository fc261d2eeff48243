"""What the emulator accepted, in arrival order, with request, record and duplicate counters.

Records are kept as JSON bytes, one array per request: several times smaller than dicts,
invisible to the garbage collector (whose full passes over millions of tracked objects would
otherwise dominate a benchmark), and the inspection API answers by joining them.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import IO, Any

import orjson

from mixpanel_core.emulator.config import ENDPOINTS
from mixpanel_core.emulator.validation import time_in_seconds

EVENT_ENDPOINTS = frozenset({"track", "import"})


def _milliseconds(value: Any) -> Any:
    seconds = time_in_seconds(value)
    return None if seconds is None else round(seconds * 1000)


class RecordStore:
    """Thread-safe store of accepted records and the counters behind ``stats()``."""

    def __init__(self, *, keep_records: bool = True) -> None:
        self._lock = threading.Lock()
        self._keep = keep_records
        self._file: IO[bytes] | None = None
        self._clear()

    def open_record_file(self, path: Path | None) -> None:
        """Append every record accepted from now on to ``path`` as a JSON line."""
        if path is None:
            return
        handle = path.open("ab")
        with self._lock:
            self._file = handle

    def _clear(self) -> None:
        # Per request: (endpoint, JSON array of its accepted records).
        self._batches: list[tuple[str, bytes]] = []
        self._insert_ids: dict[str | None, list[str]] = {name: [] for name in (*ENDPOINTS, None)}
        self._seen: set[str] = set()
        self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._accepted: Counter[str] = Counter({name: 0 for name in ENDPOINTS})
        self._rejected: Counter[str] = Counter({name: 0 for name in ENDPOINTS})
        self._unique = 0
        self._duplicates = 0

    def add(self, endpoint: str, records: list[dict[str, Any]], rejected: int) -> None:
        """Keep the accepted ``records`` of one request and count its ``rejected`` ones."""
        # Encoding and key building happen outside the lock: they are most of the work.
        batch = orjson.dumps(records) if self._keep and records else b""
        ids: list[str] = []
        keys: list[str] = []
        anonymous = 0
        if endpoint in EVENT_ENDPOINTS:
            for record in records:
                props = record["properties"]
                insert_id = props.get("$insert_id")
                if insert_id is None:
                    anonymous += 1
                    continue
                ids.append(insert_id)
                # Mixpanel's dedupe key, time in whole milliseconds, as one string: not tracked by
                # the garbage collector, and the reprs keep it unambiguous. (Kept orjson outputs
                # would cost ~10us each: orjson over-allocates and glibc fragments.)
                event, distinct_id = record.get("event"), props.get("distinct_id")
                millis = _milliseconds(props.get("time"))
                keys.append(f"{event!r}\x1f{millis}\x1f{distinct_id!r}\x1f{insert_id}")
        lines = b""
        if self._file is not None:
            prefix = b'{"endpoint":"' + endpoint.encode() + b'","record":'
            lines = b"".join(prefix + orjson.dumps(record) + b"}\n" for record in records)
        with self._lock:
            self._accepted[endpoint] += len(records)
            self._rejected[endpoint] += rejected
            # Events without $insert_id cannot be deduplicated by Mixpanel: each is unique.
            self._unique += anonymous
            seen = self._seen
            for key in keys:
                if key in seen:
                    self._duplicates += 1
                else:
                    seen.add(key)
                    self._unique += 1
            self._insert_ids[endpoint].extend(ids)
            self._insert_ids[None].extend(ids)
            if batch:
                self._batches.append((endpoint, batch))
            if self._file is not None:
                self._file.write(lines)
                self._file.flush()

    def count_request(self, endpoint: str, outcome: str) -> None:
        """Count one request by endpoint and outcome (an HTTP status, or "dropped")."""
        with self._lock:
            self._requests[endpoint][outcome] += 1

    def records_json(self, endpoint: str | None = None) -> bytes:
        """The accepted records as one JSON array, in arrival order."""
        with self._lock:
            batches = [b for name, b in self._batches if endpoint is None or name == endpoint]
        # Each batch is a non-empty JSON array: splice their insides into one array.
        return b"[" + b",".join(batch[1:-1] for batch in batches) + b"]"

    def insert_ids(self, endpoint: str | None = None) -> list[str]:
        """The $insert_id of every accepted event, in arrival order (duplicates included)."""
        with self._lock:
            return list(self._insert_ids[endpoint])

    def stats(self) -> dict[str, Any]:
        """Counters as plain JSON-able data."""
        with self._lock:
            return {
                "requests": {name: dict(counts) for name, counts in self._requests.items()},
                "accepted": dict(self._accepted),
                "rejected": dict(self._rejected),
                "unique_events": self._unique,
                "duplicate_events": self._duplicates,
            }

    def reset(self) -> None:
        """Forget every record and counter (the record file is kept: it is an append-only log)."""
        with self._lock:
            self._clear()

    def close_record_file(self) -> None:
        """Stop appending to the record file and close it."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
