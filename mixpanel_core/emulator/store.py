"""What the emulator accepted, in arrival order, with request, record and duplicate counters.

Records are kept as their JSON bytes: three to five times smaller than dicts, and the HTTP
inspection API answers by joining them without re-encoding.
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

DedupeKey = tuple[Any, Any, Any, Any]


def dedupe_key(record: dict[str, Any]) -> DedupeKey:
    """Mixpanel's dedupe key (event, time, distinct_id, $insert_id); time in whole milliseconds."""
    props = record["properties"]
    seconds = time_in_seconds(props.get("time"))
    millis = None if seconds is None else round(seconds * 1000)
    return (record.get("event"), millis, props.get("distinct_id"), props.get("$insert_id"))


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
        self._arrivals: list[tuple[str, bytes]] = []
        self._by_endpoint: dict[str, list[bytes]] = {name: [] for name in ENDPOINTS}
        self._insert_ids: dict[str | None, list[str]] = {name: [] for name in (*ENDPOINTS, None)}
        self._seen: set[DedupeKey] = set()
        self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._accepted: Counter[str] = Counter({name: 0 for name in ENDPOINTS})
        self._rejected: Counter[str] = Counter({name: 0 for name in ENDPOINTS})
        self._unique = 0
        self._duplicates = 0

    def add(self, endpoint: str, records: list[dict[str, Any]], rejected: int) -> None:
        """Keep the accepted ``records`` of one request and count its ``rejected`` ones."""
        # Encoding and key building happen outside the lock: they are most of the work.
        blobs = [orjson.dumps(record) for record in records]
        events = endpoint in EVENT_ENDPOINTS
        keys = [dedupe_key(record) for record in records] if events else []
        lines = b""
        if self._file is not None:
            prefix = b'{"endpoint":"' + endpoint.encode() + b'","record":'
            lines = b"".join(prefix + blob + b"}\n" for blob in blobs)
        with self._lock:
            self._accepted[endpoint] += len(records)
            self._rejected[endpoint] += rejected
            for key in keys:
                # Events without $insert_id cannot be deduplicated by Mixpanel: each is unique.
                if key[3] is None or key not in self._seen:
                    self._seen.add(key)
                    self._unique += 1
                else:
                    self._duplicates += 1
            if events:
                ids = [key[3] for key in keys if isinstance(key[3], str)]
                self._insert_ids[endpoint].extend(ids)
                self._insert_ids[None].extend(ids)
            if self._keep:
                self._by_endpoint[endpoint].extend(blobs)
                self._arrivals.extend((endpoint, blob) for blob in blobs)
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
            if endpoint is None:
                blobs = [blob for _, blob in self._arrivals]
            else:
                blobs = list(self._by_endpoint[endpoint])
        return b"[" + b",".join(blobs) + b"]"

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
