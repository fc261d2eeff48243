"""``RecordStore`` on its own: dedupe keys, duplicate counts and the $insert_id listing."""

from __future__ import annotations

import copy
import time
from typing import Any

import orjson

from mixpanel_core.api_limits import MAX_STRING_LENGTH
from mixpanel_core.emulator.store import RecordStore, dedupe_key
from mixpanel_core.emulator.validation import TRACK_RULES, validate_event

NOW = float(int(time.time()))  # whole seconds: +0.1 ms stays in the same millisecond


def _event(number: int, **properties: Any) -> dict[str, Any]:
    props = {"distinct_id": "user-1", "time": NOW, "$insert_id": f"id-{number}", **properties}
    return {"event": "Signed Up", "properties": props}


def test_the_dedupe_key_reads_time_in_whole_milliseconds() -> None:
    same = [_event(1), _event(1, time=NOW + 0.0001), _event(1, time=round(NOW * 1000))]
    assert len({dedupe_key(record) for record in same}) == 1
    assert dedupe_key(_event(1, time=NOW + 0.002)) != dedupe_key(_event(1))


def test_the_dedupe_key_tells_apart_values_that_print_alike() -> None:
    records = [_event(1, distinct_id="1"), _event(1, distinct_id=1), _event(1, distinct_id=1.0)]
    assert len({dedupe_key(record) for record in records}) == 3
    # A separator inside a field cannot make two different events share a key.
    tricky = [
        {"event": "a\x1f1", "properties": {"distinct_id": "b", "time": 1, "$insert_id": "i"}},
        {"event": "a", "properties": {"distinct_id": "1\x1fb", "time": 1, "$insert_id": "i"}},
    ]
    assert dedupe_key(tricky[0]) != dedupe_key(tricky[1])


def test_events_without_insert_id_have_no_key_and_count_as_unique() -> None:
    record = _event(1)
    del record["properties"]["$insert_id"]
    assert dedupe_key(record) is None
    store = RecordStore(keep_records=False)
    store.add("track", [record, record], 0)
    assert (store.stats()["unique_events"], store.stats()["duplicate_events"]) == (2, 0)
    assert store.insert_ids() == []


def test_duplicates_within_one_request_and_across_requests_are_counted() -> None:
    store = RecordStore(keep_records=False)
    store.add("track", [_event(1), _event(2), _event(1)], 0)
    store.add("import", [_event(2), _event(3)], 1)
    stats = store.stats()
    assert (stats["unique_events"], stats["duplicate_events"]) == (3, 2)
    assert stats["accepted"]["track"] == 3
    assert stats["rejected"]["import"] == 1


def test_insert_ids_are_read_back_in_arrival_order_per_endpoint() -> None:
    store = RecordStore(keep_records=False)
    store.add("track", [_event(1), _event(2, **{"$insert_id": "a-b-c"})], 0)
    store.add("import", [_event(1)], 0)
    store.add("engage", [{"$token": "t", "$distinct_id": "u", "$set": {"a": 1}}], 0)
    assert store.insert_ids() == ["id-1", "a-b-c", "id-1"]
    assert store.insert_ids("track") == ["id-1", "a-b-c"]
    assert store.insert_ids("import") == ["id-1"]
    assert store.insert_ids("engage") == []


def test_keys_given_by_the_caller_count_as_the_stores_own() -> None:
    records = [_event(n) for n in range(4)] + [_event(1)]
    given, computed = RecordStore(keep_records=True), RecordStore(keep_records=True)
    keys = [key for key in map(dedupe_key, records) if key is not None]
    given.add("track", records, 0, keys=keys)
    computed.add("track", records, 0)
    assert given.stats() == computed.stats()
    assert given.insert_ids() == computed.insert_ids()
    assert given.records_json() == computed.records_json()


def test_insert_ids_are_read_back_from_either_form_of_key() -> None:
    store = RecordStore(keep_records=False)
    odd = [
        _event(1, distinct_id=7),
        {**_event(2), "event": "a\x1fb"},
        _event(3, distinct_id="c\x1fd"),
    ]
    store.add("track", [_event(0), *odd], 0)
    assert store.insert_ids() == ["id-0", "id-1", "id-2", "id-3"]
    assert [key.startswith("\x1e") for key in map(dedupe_key, [_event(0), *odd])] == [
        False,
        True,
        True,
        True,
    ]


def test_long_strings_left_for_reading_are_truncated_as_validation_would() -> None:
    long_event = {**_event(1, note="n" * 300, tags="t" * 10), "event": "E" * 300}
    validated = copy.deepcopy(long_event)
    assert validate_event(validated, TRACK_RULES, now=NOW, tokens=frozenset({"t"})) != []
    store = RecordStore(keep_records=True)
    store.add("track", [long_event, _event(2)], 0, truncate_on_read=True)
    store.add("import", [_event(3, note="i" * 300)], 0, truncate_on_read=True)
    expected = [validated, _event(2)]
    assert orjson.loads(store.records_json("track")) == expected
    assert validated["event"] == "E" * 300  # Mixpanel cuts property values only
    assert validated["properties"]["note"] == "n" * MAX_STRING_LENGTH
    assert orjson.loads(store.records_json()) == [*expected, _event(3, note="i" * 255)]
    assert orjson.loads(store.records_json()) == [*expected, _event(3, note="i" * 255)]


def test_a_batch_without_long_strings_is_read_back_as_kept() -> None:
    store = RecordStore(keep_records=True)
    text = orjson.dumps([_event(1), _event(2)])
    store.add("track", [_event(1), _event(2)], 0, encoded=text, truncate_on_read=True)
    assert store.records_json() == text
