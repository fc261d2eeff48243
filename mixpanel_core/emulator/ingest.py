"""The four ingestion endpoints: authenticate, decode, validate, store and answer like Mixpanel."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mixpanel_core import wire
from mixpanel_core.api_limits import MAX_RECORD_BYTES
from mixpanel_core.emulator.auth import check_import_auth
from mixpanel_core.emulator.batch_text import holds_flat_events, holds_short_strings
from mixpanel_core.emulator.config import EmulatorConfig
from mixpanel_core.emulator.payload import (
    TOO_LARGE,
    Payload,
    PayloadError,
    gunzip,
    parse_payload,
    too_large_message,
)
from mixpanel_core.emulator.store import EVENT_ENDPOINTS, RecordStore, dedupe_key
from mixpanel_core.emulator.usual_events import usual_event_keys
from mixpanel_core.emulator.validation import (
    IMPORT_RULES,
    TRACK_RULES,
    EventRules,
    Problem,
    is_merge,
    settle_time,
    validate_event,
    validate_merge,
    validate_profile,
)

JSON = "application/json"
# How many failures a /track-style verbose error names before summarising.
_NAMED_FAILURES = 5


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status, body and extra headers."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """What the ingestion logic needs from an HTTP request (the body is read in full)."""

    endpoint: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(slots=True)
class _Failure:
    index: int
    record: object
    problems: list[Problem]

    def insert_id(self) -> str:
        if isinstance(self.record, dict):
            props = self.record.get("properties")
            if isinstance(props, dict) and isinstance(props.get("$insert_id"), str):
                return str(props["$insert_id"])
        return ""


@dataclass(slots=True)
class _Checked:
    """The outcome of validating one request's records, with what the store can reuse."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    # The dedupe keys of the accepted events that have one, in order; None: not made yet.
    keys: list[str] | None = field(default_factory=list)
    # The accepted records' JSON array, when the request's text is exactly that.
    encoded: bytes | None = None
    # Whether the accepted events may hold strings to truncate when read (see RecordStore.add).
    truncate_on_read: bool = False
    # /track: valid events dropped for being older than five days, and events given their
    # arrival time for being dated more than an hour ahead (validation.settle_time).
    dropped_old: int = 0
    retimed: int = 0
    # The fast path met a record its presumption did not hold for (see _validate_events).
    gave_up: bool = False

    def keep(self, record: dict[str, Any], rules: EventRules, now: float) -> bool:
        """Settle a valid event's time; False if it is dropped, not kept."""
        fate = settle_time(record, rules, now)
        if fate == "dropped":
            self.dropped_old += 1
            return False
        if fate == "retimed":
            self.retimed += 1
        self.accepted.append(record)
        return True


class IngestService:
    """Handles one ingestion request from start to answer; shared by every server thread."""

    def __init__(
        self, config: EmulatorConfig, store: RecordStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._config = config
        self._store = store
        self._clock = clock  # the arrival time, in seconds since the epoch

    def handle(self, request: IngestRequest) -> Reply:
        """Answer ``request``; accepted records are stored before the answer is returned."""
        endpoint = request.endpoint
        if endpoint == "import":
            refusal = check_import_auth(
                request.headers.get("authorization"), request.query.get("project_id"), self._config
            )
            if refusal is not None:
                body = {"code": refusal.status, "error": refusal.message, "status": "error"}
                return Reply(refusal.status, wire.dumps(body))
        try:
            payload = self._decode(request)
        except PayloadError as exc:
            # A form's own verbose=1 (where the official SDK puts it) counts as well.
            verbose = {**exc.params, **request.query}.get("verbose") == "1"
            return self._request_error(endpoint, exc.status, exc.message, verbose)
        params = {**payload.params, **request.query}
        verbose = params.get("verbose") == "1"
        records = payload.records
        limit = self._config.records_limit(endpoint)
        if len(records) > limit:
            message = f"{len(records)} records in one request; /{endpoint} accepts at most {limit}"
            return self._request_error(endpoint, 400, message, verbose)
        checked = self._validate(endpoint, payload)
        accepted, failures = checked.accepted, checked.failures
        self._store.add(
            endpoint,
            accepted,
            len(failures),
            keys=checked.keys,
            encoded=checked.encoded,
            truncate_on_read=checked.truncate_on_read,
            dropped_old=checked.dropped_old,
            retimed=checked.retimed,
        )
        if endpoint == "import":
            return _import_reply(len(accepted), failures, params.get("strict") == "1", verbose)
        return _status_reply(failures, len(records), verbose)

    def _decode(self, request: IngestRequest) -> Payload:
        """The request's payload, its (uncompressed) body held to the limit."""
        limit = self._config.max_body_bytes
        body = request.body
        if request.headers.get("content-encoding", "").strip().lower() == "gzip":
            body = gunzip(body, limit)
        if len(body) > limit:
            raise PayloadError(413, too_large_message(limit))
        content_type = request.headers.get("content-type", "")
        return parse_payload(body, content_type, allow_ndjson=request.endpoint == "import")

    def _validate(self, endpoint: str, payload: Payload) -> _Checked:
        retimed = 0
        # Each record is measured as its compact JSON, in whatever request it comes: when the
        # request's records re-encoded together are under 1 MB, none of them can be over it.
        # (The body's own size is no bound: ``1e15`` is written ``1000000000000000.0``; R66 F1.)
        measure = _too_large(payload.records)
        if endpoint in EVENT_ENDPOINTS:
            checked = self._validate_events(endpoint, payload, measure)
            if not checked.gave_up:
                return checked
            # The events it gave their arrival time were retimed in place: the full checks
            # find them current, and count them no more.
            retimed = checked.retimed
        checked = self._validate_each(endpoint, payload.records, measure)
        checked.retimed += retimed
        return checked

    def _validate_events(self, endpoint: str, payload: Payload, measure: bool) -> _Checked:
        """Runs of usual events take the fast path (``usual_events``), the others the full checks.

        ``gave_up`` when the batch's text vouched for its values on a presumption (every
        record an object with object properties) that a record breaks: then every record
        needs the full checks.
        """
        records, text, store = payload.records, payload.text, self._store
        # Strings must be known short now only for the record file, written as records come:
        # kept records are truncated when first read (RecordStore), counting needs no content,
        # and the dedupe key's distinct_id is checked record by record.
        strings_now = store.writes_record_file
        plain = (
            text is not None
            and holds_flat_events(text, len(records))
            and (not strings_now or holds_short_strings(text))
        )
        rules = IMPORT_RULES if endpoint == "import" else TRACK_RULES
        now = self._clock()
        tokens = self._config.token_set
        keys_from = usual_event_keys(rules, now=now, tokens=tokens, values_known_plain=plain)
        keys: list[str] = []
        checked = _Checked(keys=keys)
        accepted, failures = checked.accepted, checked.failures
        index, count = 0, len(records)
        while index < count:
            run = keys_from(records, index)
            if measure:
                run = run[: _count_under_1_mb(records, index, len(run))]
            if run:
                end = index + len(run)
                accepted.extend(records[index:end])
                keys.extend(run)
                index = end
                continue
            # Not a usual valid event (or 1 MB or more): the full checks decide.
            record = records[index]
            if plain and not _event_shaped(record):
                checked.gave_up = True
                return checked
            problems = _record_problems(record, endpoint, rules, now, tokens, measure)
            if problems:
                failures.append(_Failure(index, record, problems))
            elif checked.keep(record, rules, now):
                key = dedupe_key(record)
                if key is not None:
                    keys.append(key)
            index += 1
        if (
            plain
            and store.keeps_records
            and len(accepted) == count
            and not checked.retimed
            and text is not None
        ):
            # Every record accepted as sent: the request's text is their JSON already (any
            # string the full checks cut, or that nothing looked at, is cut when read).
            checked.encoded = _as_array(text)
        checked.truncate_on_read = plain and not strings_now
        return checked

    def _validate_each(self, endpoint: str, records: list[Any], measure: bool) -> _Checked:
        """Every record through the full checks (the store makes the dedupe keys)."""
        tokens = self._config.token_set
        now = self._clock()
        rules = IMPORT_RULES if endpoint == "import" else TRACK_RULES
        checked = _Checked(keys=None)
        for index, record in enumerate(records):
            problems = _record_problems(record, endpoint, rules, now, tokens, measure)
            if problems:
                checked.failures.append(_Failure(index, record, problems))
            elif endpoint in EVENT_ENDPOINTS:
                checked.keep(record, rules, now)
            else:
                checked.accepted.append(record)
        return checked

    def _request_error(self, endpoint: str, status: int, message: str, verbose: bool) -> Reply:
        if status == 413 or endpoint == "import":
            phrase = TOO_LARGE if status == 413 else "Bad Request"
            return Reply(status, wire.dumps({"code": status, "error": message, "status": phrase}))
        return _status_body(status, message, verbose)


def _as_array(text: bytes) -> bytes:
    """The JSON document ``text`` (an array or one object) as an array, without outer spaces."""
    text = text.strip()
    return text if text[:1] == b"[" else b"[" + text + b"]"


def _too_large(record: Any) -> bool:
    return len(wire.dumps(record)) >= MAX_RECORD_BYTES


def _count_under_1_mb(records: list[Any], start: int, count: int) -> int:
    """How many of the ``count`` records from ``start`` on are, one after another, under 1 MB."""
    for offset in range(count):
        if _too_large(records[start + offset]):
            return offset
    return count


def _event_shaped(record: object) -> bool:
    """An object whose ``properties`` is an object: what ``holds_flat_events`` presumes."""
    return type(record) is dict and type(record.get("properties")) is dict


def _record_problems(
    record: object,
    endpoint: str,
    rules: EventRules,
    now: float,
    tokens: frozenset[str],
    measure: bool,
) -> list[Problem]:
    """Every problem of one record, by the full checks; [] if it is valid."""
    if measure and _too_large(record):
        return [Problem("", "record is 1 MB or more of JSON; keep each under 1 MB")]
    if rules.merge_rules and is_merge(record):
        return validate_merge(record)
    if endpoint in EVENT_ENDPOINTS:
        return validate_event(record, rules, now=now, tokens=tokens)
    return validate_profile(record, endpoint, tokens=tokens)


def _status_body(http_status: int, error: str | None, verbose: bool) -> Reply:
    """The /track, /engage, /groups answer: bare 1/0, or {"status", "error"} with verbose=1."""
    ok = error is None
    if verbose:
        return Reply(http_status, wire.dumps({"status": int(ok), "error": error}))
    return Reply(http_status, b"1" if ok else b"0", content_type="text/plain")


def _status_reply(failures: list[_Failure], total: int, verbose: bool) -> Reply:
    if not failures:
        return _status_body(200, None, verbose)
    named = "; ".join(
        f"record {failure.index}: {problem.field or 'record'}: {problem.message}"
        for failure in failures[:_NAMED_FAILURES]
        for problem in failure.problems
    )
    more = (
        "" if len(failures) <= _NAMED_FAILURES else f"; and {len(failures) - _NAMED_FAILURES} more"
    )
    # Mixpanel answers validation problems with HTTP 200 and status 0.
    return _status_body(
        200, f"{len(failures)} of {total} records failed validation: {named}{more}", verbose
    )


def _import_reply(imported: int, failures: list[_Failure], strict: bool, verbose: bool) -> Reply:
    body: dict[str, Any]
    if failures and strict:
        body = {
            "code": 400,
            "error": "some data points in the request failed validation",
            "status": "Bad Request",
            "num_records_imported": imported,
            "failed_records": [
                {
                    "index": failure.index,
                    "insert_id": failure.insert_id(),
                    "field": problem.field,
                    "message": problem.message,
                }
                for failure in failures
                for problem in failure.problems
            ],
        }
    else:
        body = {"code": 200, "num_records_imported": imported, "status": "OK"}
    if verbose:
        # The official SDK posts verbose=1 to /import too and checks for status == 1.
        body["status"] = int(body["code"] == 200)
        body["error"] = body.get("error")
    return Reply(body["code"], wire.dumps(body))
