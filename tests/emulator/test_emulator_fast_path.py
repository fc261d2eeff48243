"""The emulator's fast path for usual events answers exactly as its full checks do.

Three layers: what ``batch_text`` reads off a request's text must never be wrong; the per-record
``usual_event_key`` must accept only what ``validate_event`` accepts unchanged, with the key the
store would make; and whole requests served with the fast path, and with it switched off, must
leave the same answers, counters, records and record file.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.api_limits import MAX_STRING_LENGTH
from mixpanel_core.emulator.batch_text import holds_flat_events, holds_short_strings
from mixpanel_core.emulator.config import EmulatorConfig
from mixpanel_core.emulator.ingest import IngestRequest, IngestService, _Checked
from mixpanel_core.emulator.store import RecordStore, dedupe_key
from mixpanel_core.emulator.usual_events import usual_event_keys
from mixpanel_core.emulator.validation import IMPORT_RULES, TRACK_RULES, validate_event

TOKEN = "emulator-token"
# One clock for the module: events built twice are then the same events.
NOW = time.time()
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON_BODY = {"content-type": "application/json"}
IMPORT_AUTH = {"authorization": "Basic " + base64.b64encode(b"sa-user:sa-secret").decode()}


def _usual(number: int = 0, **properties: Any) -> dict[str, Any]:
    """An event as the official SDK sends it; keyword arguments replace or add properties."""
    props: dict[str, Any] = {
        "token": TOKEN,
        "distinct_id": f"user-{number % 7}",
        "time": NOW - 60 + number / 1000,
        "$insert_id": f"{number:032x}",
        "mp_lib": "python",
        "$lib_version": "5.4.1",
        "plan": "pro",
        "price": 9.99,
        "coupon": None,
    }
    props.update(properties)
    return {"event": "Purchase", "properties": props}


MISSING = object()


def _with(number: int, **changes: Any) -> dict[str, Any]:
    """A usual event with properties changed; MISSING removes one."""
    record = _usual(number)
    for key, value in changes.items():
        if value is MISSING:
            del record["properties"][key]
        else:
            record["properties"][key] = value
    return record


def _unusual_records() -> list[Any]:
    """Records that are almost usual, each off in one way: invalid, or valid but unusual."""
    now = NOW
    long_text = "x" * (MAX_STRING_LENGTH + 45)
    return [
        {"properties": _usual(1)["properties"]},
        {"event": "", "properties": _usual(2)["properties"]},
        {"event": 7, "properties": _usual(3)["properties"]},
        {"event": "Purchase"},
        {"event": "Purchase", "properties": [1, 2]},
        "not an object",
        12,
        None,
        _with(4, token=MISSING),
        _with(5, token="someone-elses-token"),
        _with(6, token=123),
        _with(7, time=MISSING),
        _with(8, time=True),
        _with(9, time="yesterday"),
        _with(10, time=now - 6 * 86400),
        _with(11, time=now + 2 * 3600),
        _with(12, time=round(now * 1000) - 1000),  # milliseconds, valid
        _with(13, time=round(now * 1000) - 10 * 86400 * 1000),
        _with(14, time=int(now) - 5),  # whole seconds, valid
        _with(15, time=20_000_000),  # before 1971
        _with(16, distinct_id=MISSING),
        _with(17, distinct_id=42),
        _with(18, distinct_id=None),
        _with(19, distinct_id=["a"]),
        _with(20, distinct_id="Anonymous"),
        _with(21, distinct_id=""),
        _with(22, distinct_id=long_text),
        _with(23, **{"$insert_id": MISSING}),
        _with(24, **{"$insert_id": None}),
        _with(25, **{"$insert_id": "9c0e1d2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"}),
        _with(26, **{"$insert_id": "a" * 37}),
        _with(27, **{"$insert_id": ""}),
        _with(28, **{"$insert_id": "üüü"}),
        _with(29, **{"$insert_id": "has space"}),
        _with(30, **{"$insert_id": 12345}),
        _with(31, **{"$insert_id": "-"}),
        _with(32, **{f"p{i}": i for i in range(250)}),  # 255+ properties
        _with(33, **{f"p{i}": i for i in range(244)}),  # 253 properties: valid
        _with(34, note=long_text),
        _with(35, items=[1, 2, 3]),
        _with(36, cart={"sku": "a", "tags": ["x"]}),
        _with(37, deep={"a": {"b": {"c": {"d": 1}}}}),
        _with(38, many=list(range(300))),
        {**_usual(39), "extra": {"top": "level"}},
        {"event": "Pur\x1fchase", "properties": _usual(40)["properties"]},  # quoted key form
        _with(41, distinct_id="user\x1f41"),
    ]


@pytest.mark.parametrize("rules", [TRACK_RULES, IMPORT_RULES], ids=["track", "import"])
def test_usual_events_get_the_stores_key_and_pass_the_full_checks(rules: Any) -> None:
    key_of = _key_of(rules, values_known_plain=False)
    for number in range(50):
        record = _usual(number)
        key = key_of(record)
        assert key is not None
        assert key == dedupe_key(record)
        assert validate_event(record, rules, now=time.time(), tokens=frozenset({TOKEN})) == []


@pytest.mark.parametrize("rules", [TRACK_RULES, IMPORT_RULES], ids=["track", "import"])
@pytest.mark.parametrize("values_known_plain", [False, True])
def test_a_key_only_for_records_the_full_checks_accept_unchanged(
    rules: Any, values_known_plain: bool
) -> None:
    key_of = _key_of(rules, values_known_plain=values_known_plain)
    keyed = 0
    for record in _unusual_records():
        if values_known_plain and _has_containers_or_long_strings(record):
            continue  # the caller vouches for these values only when the text proves them plain
        key = key_of(record)
        checked = copy.deepcopy(record)
        problems = validate_event(checked, rules, now=time.time(), tokens=frozenset({TOKEN}))
        if key is not None:
            keyed += 1
            assert problems == [], record
            assert checked == record, "the full checks would have changed it"
            assert key == dedupe_key(record)
    # The valid variants: time in ms, time in whole seconds, "" as distinct_id, a UUID and a
    # "-" as $insert_id, 253 properties, an extra top-level key; on /track, which takes
    # placeholders, "Anonymous" as distinct_id; on /import, which authenticates by header and
    # takes old events, the three token variants and the two times older than five days.
    assert keyed == (8 if rules is TRACK_RULES else 12)


@pytest.mark.parametrize("rules", [TRACK_RULES, IMPORT_RULES], ids=["track", "import"])
def test_every_invalid_record_is_left_to_the_full_checks(rules: Any) -> None:
    key_of = _key_of(rules, values_known_plain=False)
    for record in _unusual_records():
        problems = validate_event(
            copy.deepcopy(record), rules, now=time.time(), tokens=frozenset({TOKEN})
        )
        if problems:
            assert key_of(record) is None, (record, problems)


def _key_of(rules: Any, *, values_known_plain: bool) -> Callable[[Any], str | None]:
    """The fast path's answer for one record: its key, or None when it stops at it."""
    keys_from = usual_event_keys(
        rules, now=time.time(), tokens=frozenset({TOKEN}), values_known_plain=values_known_plain
    )
    return lambda record: next(iter(keys_from([record], 0)), None)


def test_the_fast_path_stops_at_the_first_unusual_record_of_a_run() -> None:
    keys_from = usual_event_keys(
        TRACK_RULES, now=time.time(), tokens=frozenset({TOKEN}), values_known_plain=False
    )
    records = [_usual(0), _usual(1), _with(2, time="noon"), _usual(3)]
    assert keys_from(records, 0) == [dedupe_key(records[0]), dedupe_key(records[1])]
    assert keys_from(records, 2) == []
    assert keys_from(records, 3) == [dedupe_key(records[3])]
    assert keys_from(records, 4) == []


def _has_containers_or_long_strings(record: Any) -> bool:
    """What ``values_known_plain`` vouches against (distinct_id aside: it is always checked)."""
    props = record.get("properties") if isinstance(record, dict) else None
    if not isinstance(props, dict):
        return False
    return any(
        isinstance(value, dict | list)
        or (isinstance(value, str) and len(value) > MAX_STRING_LENGTH and key != "distinct_id")
        for key, value in props.items()
    )


# --- batch_text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "flat"),
    [
        ([_usual(1), _usual(2)], True),
        ([_with(1, items=[1])], False),
        ([_with(1, cart={"a": 1})], False),
        ([_with(1, note="has { a brace")], False),  # safe: only ever a needless False
        ([_with(1, note="has [ a bracket")], False),
        ([], True),
    ],
)
def test_flat_events_are_told_from_the_text(records: list[Any], flat: bool) -> None:
    for text in (orjson.dumps(records), json.dumps(records, indent=2).encode()):
        assert holds_flat_events(text, len(records)) is flat


def test_a_single_record_document_may_be_flat() -> None:
    text = b' \n{"event":"E","properties":{"a":1}}'
    assert holds_flat_events(text, 1)
    assert not holds_flat_events(b'{"event":"E","properties":{"a":{}}}', 1)


def test_braces_can_balance_only_when_some_record_lacks_the_presumed_shape() -> None:
    # Two records without braces leave room for a nested object in the third: the proviso of
    # holds_flat_events, which the ingest path enforces by restarting with the full checks.
    records = [1, 2, _with(1, deep={"a": {"b": {"c": {"d": 1}}}})]
    assert holds_flat_events(orjson.dumps(records), 3)
    assert validate_event(records[2], TRACK_RULES, now=NOW, tokens=frozenset({TOKEN}))


@pytest.mark.parametrize(
    ("value", "short"),
    [
        ("a" * MAX_STRING_LENGTH, True),
        ("a" * (MAX_STRING_LENGTH + 1), False),
        ("a" * 200 + '"' + "b" * 100, False),  # an escaped quote must not split the string
        ("a" * 200 + "\\" + "b" * 100, False),
        ("ends with a backslash \\", True),
        ("a" * (MAX_STRING_LENGTH - 2) + "\\", True),  # the quote after the escape ends it
        ("\\" * 300, False),
        ("é" * 200, False),  # 400 bytes for 200 characters: a needless but safe False
    ],
)
def test_long_strings_are_told_from_the_text(value: str, short: bool) -> None:
    for text in (orjson.dumps([_with(1, note=value), "x"]), json.dumps([value, "x"]).encode()):
        assert holds_short_strings(text) is short


def test_an_escaped_backslash_before_a_closing_quote_ends_the_string() -> None:
    # Read as an escaped quote, each closing quote would be lost and the strings would run
    # together into one long stretch.
    assert holds_short_strings(json.dumps(["a\\"] * 100).encode())


def test_short_strings_are_never_vouched_for_wrongly() -> None:
    """Random documents full of escapes: a True answer is always right."""
    rng = random.Random(20260509)
    alphabet = ['"', "\\", "a", "é", "\n", "/", "\u2028", "😀", "{", "["]
    vouched = 0
    for _ in range(3000):
        strings = [
            "".join(rng.choice(alphabet) for _ in range(rng.choice([10, 120, 250, 254, 255, 256])))
            for _ in range(rng.randint(1, 4))
        ]
        text = json.dumps(strings, ensure_ascii=rng.random() < 0.5).encode()
        if holds_short_strings(text):
            vouched += 1
            assert max(map(len, strings)) <= MAX_STRING_LENGTH, strings
    assert vouched > 100  # the test exercised the True answer, not only the safe False


# --- whole requests: fast path against full checks --------------------------------------------


Request = tuple[str, dict[str, str], dict[str, str], bytes]


def _form(records: Any, fields: str = "&verbose=1") -> bytes:
    from urllib.parse import quote

    return b"data=" + quote(json.dumps(records)).encode() + fields.encode()


def _requests() -> list[Request]:
    usual = [_usual(n) for n in range(40)]
    unusual = _unusual_records()
    strict = {"strict": "1", "project_id": "12345", "verbose": "1"}
    data = base64.b64encode(json.dumps([_usual(56)]).encode()).decode()
    big = _with(70, **{f"big{number}": "b" * 5000 for number in range(200)})
    ndjson = b"\n".join(orjson.dumps(record) for record in [_usual(62), *unusual[:12]])
    return [
        ("track", {}, FORM, _form(usual)),
        ("track", {}, FORM, _form(usual[:10])),  # duplicates of earlier events
        ("track", {}, FORM, _form(usual[10:12] + usual[10:12])),  # and within one request
        ("track", {}, FORM, _form(unusual)),
        ("track", {}, FORM, _form([*usual[:3], _with(50, note="n" * 300), _with(51, a=[1])])),
        ("track", {}, FORM, _form([_usual(63), _with(64, note="n" * 300)])),  # flat, one long
        ("track", {}, FORM, _form([_usual(66), _with(67, token="not-ours")])),  # flat, one bad
        # Over 1 MB: each record is measured, and the one of 1 MB or more is refused for it.
        ("track", {"verbose": "1"}, JSON_BODY, orjson.dumps([_usual(68), big, _usual(69)])),
        # Users that differ only past the 255 characters kept: duplicates once truncated.
        ("track", {}, FORM, _form([_with(65, distinct_id=f"{'d' * 300}{end}") for end in "ef"])),
        ("track", {}, FORM, _form([1, 2, _with(52, deep={"a": {"b": {"c": {"d": 1}}}})])),
        ("track", {}, FORM, _form([_usual(53), "x", _with(54, deep={"a": {"b": {}}})])),
        ("track", {}, FORM, _form(_usual(55), "")),  # one object, not verbose
        ("track", {}, FORM, f"data={data}&verbose=1".encode()),  # base64, as older SDKs send
        ("track", {"verbose": "1"}, JSON_BODY, json.dumps([_usual(57), *unusual]).encode()),
        ("import", strict, {**JSON_BODY, **IMPORT_AUTH}, orjson.dumps([_usual(58), *unusual])),
        (
            "import",
            strict,
            {**JSON_BODY, **IMPORT_AUTH, "content-encoding": "gzip"},
            gzip.compress(orjson.dumps([_usual(60), _usual(61)])),
        ),
        ("import", strict, {"content-type": "application/x-ndjson", **IMPORT_AUTH}, ndjson),
        ("import", {"project_id": "12345"}, {**JSON_BODY, **IMPORT_AUTH}, orjson.dumps(unusual)),
    ]


def _serve(
    requests: list[Request],
    keep_records: bool,
    record_file: Path | None,
    monkeypatch: pytest.MonkeyPatch,
    fast_path: bool,
) -> dict[str, Any]:
    """Serve ``requests`` and return all that can be observed afterwards."""
    store = RecordStore(keep_records=keep_records)
    store.open_record_file(record_file)
    # One clock for both ways: a /track event from the future is given the arrival time.
    service = IngestService(EmulatorConfig(keep_records=keep_records), store, clock=lambda: NOW)
    with monkeypatch.context() as patch:
        if not fast_path:
            # Declining every batch leaves each record to the full checks, its key to the
            # store and its encoding to orjson: the emulator as it was before the fast path.
            patch.setattr(IngestService, "_validate_events", _decline)
        replies = [
            service.handle(IngestRequest(endpoint, query, headers, body))
            for endpoint, query, headers, body in requests
        ]
    store.close_record_file()
    return {
        "replies": [(reply.status, reply.content_type, reply.body) for reply in replies],
        "stats": store.stats(),
        "records": orjson.loads(store.records_json()),
        "track_records": orjson.loads(store.records_json("track")),
        "insert_ids": store.insert_ids(),
        "import_insert_ids": store.insert_ids("import"),
        "record_file": []
        if record_file is None
        else [orjson.loads(line) for line in record_file.read_bytes().splitlines()],
    }


def _decline(*args: Any) -> _Checked:
    """The fast path giving every request up to the full checks."""
    return _Checked(gave_up=True)


@pytest.mark.parametrize(
    ("keep_records", "with_file"), [(True, False), (False, False), (True, True), (False, True)]
)
def test_requests_are_answered_and_stored_alike_with_or_without_the_fast_path(
    keep_records: bool, with_file: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = _requests()
    files = (tmp_path / "fast.jsonl", tmp_path / "full.jsonl") if with_file else (None, None)
    fast = _serve(requests, keep_records, files[0], monkeypatch, fast_path=True)
    full = _serve(requests, keep_records, files[1], monkeypatch, fast_path=False)
    assert fast == full
    # The requests exercise what they are meant to: duplicates, failures, truncation.
    stats = full["stats"]
    assert stats["duplicate_events"] > 14
    assert stats["rejected"]["track"] >= 50
    assert stats["dropped_old"]["track"] >= 3
    assert stats["retimed"]["track"] >= 1
    assert any(b"failed_records" in body for _, _, body in full["replies"])
    assert any(b"1 MB or more" in body for _, _, body in full["replies"])
    kept = full["record_file"] if with_file else full["records"]
    if with_file:
        assert len(kept) == stats["accepted"]["track"] + stats["accepted"]["import"]
        kept = [line["record"] for line in kept]
    if with_file or keep_records:
        notes = [record["properties"].get("note") for record in kept]
        assert "n" * MAX_STRING_LENGTH in notes


def test_the_fast_path_keeps_the_requests_own_json_when_it_accepts_all(tmp_path: Path) -> None:
    store = RecordStore(keep_records=True)
    service = IngestService(EmulatorConfig(), store)
    records = [_usual(n) for n in range(5)]
    text = json.dumps(records, indent=1).encode()
    reply = service.handle(IngestRequest("track", {"verbose": "1"}, JSON_BODY, text))
    assert reply.body == b'{"status":1,"error":null}'
    assert store.records_json() == text  # the same bytes, not encoded again
    assert orjson.loads(store.records_json()) == records


def test_long_strings_are_truncated_when_records_are_kept() -> None:
    store = RecordStore(keep_records=True)
    service = IngestService(EmulatorConfig(), store)
    body = _form([_usual(1), _with(2, note="n" * 300)])
    service.handle(IngestRequest("track", {}, FORM, body))
    kept = orjson.loads(store.records_json())
    assert kept[1]["properties"]["note"] == "n" * MAX_STRING_LENGTH
    assert kept[0] == _usual(1)
