"""What the emulator accepted, in arrival order, with request, record, duplicate and connection
counters.

Records are kept as JSON bytes, one array per request: several times smaller than dicts,
invisible to the garbage collector (whose full passes over millions of tracked objects would
otherwise dominate a benchmark), and the inspection API answers by joining them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import IO, Any

from mixpanel_core import wire
from mixpanel_core.emulator.batch_text import holds_short_strings
from mixpanel_core.emulator.config import ENDPOINTS
from mixpanel_core.emulator.validation import time_in_seconds, truncate_as_stored

EVENT_ENDPOINTS = frozenset({"track", "import"})
# Between the fields of a dedupe key (written out in its f-strings, which take no backslash
# in an expression), and the first character of a key in its quoted form.
_SEPARATOR = "\x1f"
_QUOTED = "\x1e"
# Mixpanel stamps an event sent without a time with its arrival time, so no two deliveries of
# it share a dedupe key: each gets a stand-in for that time that is never repeated.
_ARRIVALS = itertools.count()


class RecordFileError(Exception):
    """The record file did not take a request's records; none of them was counted or kept."""


def _append_whole(file: IO[bytes], lines: bytes) -> None:
    """Append ``lines`` to ``file`` (unbuffered), or raise ``RecordFileError`` with the file
    cut back to where it ended: no line of a request that was not accepted stays in it."""
    fd = file.fileno()
    end = os.fstat(fd).st_size
    try:
        view = memoryview(lines)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, end)
        raise RecordFileError(f"the record file could not be written: {exc}") from exc


def _milliseconds(value: Any) -> Any:
    seconds = time_in_seconds(value)
    return None if seconds is None else round(seconds * 1000)


def dedupe_key(record: dict[str, Any]) -> str | None:
    """Mixpanel's dedupe key of an accepted event, or None if it has no $insert_id (then it
    cannot be deduplicated: every such event counts as unique).

    (event, time in whole milliseconds, distinct_id, $insert_id) as one string, the time of an
    event sent without one being a stand-in for its arrival time: not tracked by
    the garbage collector, and several times smaller than a tuple with its strings.
    (Kept orjson outputs would cost ~10us each: orjson over-allocates and glibc fragments.)
    Two forms, each unambiguous, never equal to one another:

    - the usual event, a string event and distinct_id without the separator in them:
      ``$insert_id, millis, event, distinct_id``, joined by the separator, which validation
      keeps out of the $insert_id too (``usual_events`` writes this form out inline);
    - any other: ``_QUOTED`` then ``repr(event), millis, repr(distinct_id), $insert_id``; the
      reprs tell ``"1"`` from ``1`` and escape any separator. (An $insert_id never starts
      with ``_QUOTED``.)
    """
    props = record["properties"]
    insert_id = props.get("$insert_id")
    if insert_id is None:
        return None
    millis = _milliseconds(props.get("time"))
    if millis is None:
        millis = f"arrival-{next(_ARRIVALS)}"
    event, distinct_id = record.get("event"), props.get("distinct_id")
    if (
        type(event) is str
        and type(distinct_id) is str
        and _SEPARATOR not in event
        and _SEPARATOR not in distinct_id
    ):
        return f"{insert_id}\x1f{millis}\x1f{event}\x1f{distinct_id}"
    return f"\x1e{event!r}\x1f{millis}\x1f{distinct_id!r}\x1f{insert_id}"


def _insert_id(key: str) -> str:
    """The $insert_id a ``dedupe_key`` was made with."""
    if key.startswith(_QUOTED):
        return key.rpartition(_SEPARATOR)[2]
    return key.partition(_SEPARATOR)[0]


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
        # Unbuffered: a write that fails must leave nothing behind to be flushed later.
        handle = path.open("ab", buffering=0)
        with self._lock:
            self._file = handle

    def _clear(self) -> None:
        # Per request: (endpoint, JSON array of its accepted records, whether long strings
        # may be left to truncate when read).
        self._batches: list[tuple[str, bytes, bool]] = []
        # The dedupe key of every accepted event with an $insert_id, in arrival order: the
        # same strings as in _seen, so listing them costs a reference each.
        self._keys: dict[str | None, list[str]] = {name: [] for name in (*ENDPOINTS, None)}
        self._seen: set[str] = set()
        self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._accepted: Counter[str] = Counter({name: 0 for name in ENDPOINTS})
        self._rejected: Counter[str] = Counter({name: 0 for name in ENDPOINTS})
        self._dropped_old: Counter[str] = Counter({name: 0 for name in ENDPOINTS})
        self._retimed: Counter[str] = Counter({name: 0 for name in ENDPOINTS})
        self._unique = 0
        self._duplicates = 0
        self._connections = 0

    @property
    def keeps_records(self) -> bool:
        """Whether accepted records are kept for inspection, not only counted."""
        return self._keep

    @property
    def writes_record_file(self) -> bool:
        """Whether each accepted record is appended to a record file as it is added."""
        return self._file is not None

    def add(
        self,
        endpoint: str,
        records: list[dict[str, Any]],
        rejected: int,
        *,
        keys: list[str] | None = None,
        encoded: bytes | None = None,
        truncate_on_read: bool = False,
        dropped_old: int = 0,
        retimed: int = 0,
    ) -> None:
        """Keep the accepted ``records`` of one request and count its ``rejected`` ones, its
        ``dropped_old`` (valid /track events older than five days, dropped silently) and its
        ``retimed`` (accepted /track events dated ahead, given their arrival time).

        The caller may pass what it already has: ``keys``, the ``dedupe_key`` of each event
        of ``records`` that has one, in order; ``encoded``, the JSON array of exactly
        ``records``, kept instead of encoding them again. ``truncate_on_read`` says the events'
        properties may hold strings longer than Mixpanel keeps, which validation would have
        cut: they are cut when first read, for a batch that needs it (never with a record
        file, whose lines are written here).
        """
        # Encoding and key building happen outside the lock: they are most of the work.
        batch = b""
        if self._keep and records:
            batch = encoded if encoded is not None else wire.dumps(records)
        if endpoint not in EVENT_ENDPOINTS:
            keys, anonymous = [], 0
        else:
            if keys is None:
                keys = [key for key in map(dedupe_key, records) if key is not None]
            # Events without $insert_id cannot be deduplicated by Mixpanel: each is unique.
            anonymous = len(records) - len(keys)
        lines = b""
        if self._file is not None:
            prefix = b'{"endpoint":"' + endpoint.encode() + b'","record":'
            lines = b"".join(prefix + wire.dumps(record) + b"}\n" for record in records)
        with self._lock:
            if self._file is not None:
                # Written before anything is counted: a write that fails (a full disk) leaves
                # the request unaccepted, as its 500 tells the client, and its retry no
                # duplicate of records that were never stored.
                _append_whole(self._file, lines)
            self._accepted[endpoint] += len(records)
            self._rejected[endpoint] += rejected
            self._dropped_old[endpoint] += dropped_old
            self._retimed[endpoint] += retimed
            seen = self._seen
            known = len(seen)
            seen.update(keys)
            new = len(seen) - known  # a key repeated within this request counts once
            self._unique += anonymous + new
            self._duplicates += len(keys) - new
            self._keys[endpoint].extend(keys)
            self._keys[None].extend(keys)
            if batch:
                self._batches.append((endpoint, batch, truncate_on_read))

    def count_request(self, endpoint: str, outcome: str) -> None:
        """Count one request by endpoint and outcome (an HTTP status, or "dropped")."""
        with self._lock:
            self._requests[endpoint][outcome] += 1

    def count_connection(self) -> None:
        """Count one TCP connection accepted (whatever it then carries: requests, nothing)."""
        with self._lock:
            self._connections += 1

    def records_json(self, endpoint: str | None = None) -> bytes:
        """The accepted records as one JSON array, in arrival order."""
        with self._lock:
            chosen = [
                (index, entry)
                for index, entry in enumerate(self._batches)
                if endpoint is None or entry[0] == endpoint
            ]
        batches = [
            self._truncated(index, entry) if entry[2] else entry[1] for index, entry in chosen
        ]
        # Each batch is a non-empty JSON array: splice their insides into one array.
        return b"[" + b",".join(batch[1:-1] for batch in batches) + b"]"

    def _truncated(self, index: int, entry: tuple[str, bytes, bool]) -> bytes:
        """The batch of ``entry`` with its long strings truncated, put back in its place."""
        endpoint, batch, _ = entry
        if not holds_short_strings(batch):
            records = wire.loads(batch)
            for record in records:
                truncate_as_stored(record)
            batch = wire.dumps(records)
        with self._lock:
            # Unless reset() emptied the list meanwhile, the entry is where it was read.
            if index < len(self._batches) and self._batches[index] is entry:
                self._batches[index] = (endpoint, batch, False)
        return batch

    def insert_ids(self, endpoint: str | None = None) -> list[str]:
        """The $insert_id of every accepted event, in arrival order (duplicates included)."""
        with self._lock:
            keys = list(self._keys[endpoint])
        return [_insert_id(key) for key in keys]

    def stats(self) -> dict[str, Any]:
        """Counters as plain JSON-able data."""
        with self._lock:
            return {
                "requests": {name: dict(counts) for name, counts in self._requests.items()},
                "accepted": dict(self._accepted),
                "rejected": dict(self._rejected),
                "dropped_old": dict(self._dropped_old),
                "retimed": dict(self._retimed),
                "unique_events": self._unique,
                "duplicate_events": self._duplicates,
                "connections": self._connections,
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
