"""The emulator refuses what MIXPANEL_API.md says Mixpanel refuses, whichever path a record takes.

Each test sends real requests over a socket. They pin discrepancies found in an audit of the
emulator against the API reference: records that the fast path for usual events accepted though
the full checks (and Mixpanel) refuse them, and ``$merge`` events that escaped the limits every
record obeys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

MakeEvent = Callable[..., dict[str, Any]]
PostImport = Callable[..., requests.Response]


def _failed(response: requests.Response) -> list[tuple[int, str]]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "Bad Request"
    return [(entry["index"], entry["field"]) for entry in body["failed_records"]]


@pytest.mark.parametrize("placeholder", [" null ", "None ", "\tundefined", " 0", "ANON  "])
def test_import_refuses_a_placeholder_distinct_id_with_surrounding_spaces(
    mixpanel_emulator: Emulator,
    make_event: MakeEvent,
    post_import: PostImport,
    placeholder: str,
) -> None:
    # MIXPANEL_API.md: placeholder distinct_ids are rejected on /import; the emulator compares
    # them trimmed and case-insensitively. A usual event (time, distinct_id and $insert_id all
    # present) used to take the fast path, which compared them untrimmed and accepted them.
    records = [make_event(), make_event(distinct_id=placeholder), make_event()]

    response = post_import(records)

    assert _failed(response) == [(1, "properties.distinct_id")]
    assert response.json()["num_records_imported"] == 2
    kept = [record["properties"]["distinct_id"] for record in mixpanel_emulator.records()]
    assert placeholder not in kept


@pytest.mark.parametrize("placeholder", [0, -1, 0.0, -1.0])
def test_import_refuses_the_numbers_0_and_minus_1_however_written(
    make_event: MakeEvent, post_import: PostImport, placeholder: float
) -> None:
    # JSON's 0.0 is the number 0 (review R40 F1: its text in Python, "0.0", was not among the
    # placeholders, so it was imported while 0 was refused).
    response = post_import([make_event(), make_event(distinct_id=placeholder)])

    assert _failed(response) == [(1, "properties.distinct_id")]


def test_import_answers_a_lone_spaced_placeholder_as_the_full_checks_do(
    make_event: MakeEvent, post_import: PostImport
) -> None:
    lone = post_import([make_event(distinct_id=" null ")])
    # After a record the fast path leaves to the full checks (a number distinct_id), the fast
    # path takes over again for the next record: the answer must not depend on that.
    after_full = post_import([make_event(distinct_id=5), make_event(distinct_id=" null ")])

    assert _failed(lone) == [(0, "properties.distinct_id")]
    assert _failed(after_full) == [(1, "properties.distinct_id")]


@pytest.mark.parametrize("distinct_ids", ["missing", "a-string", ["only-one"]])
def test_import_refuses_a_merge_without_two_distinct_ids_even_with_event_fields(
    mixpanel_emulator: Emulator,
    make_event: MakeEvent,
    post_import: PostImport,
    distinct_ids: object,
) -> None:
    # MIXPANEL_API.md: a $merge carries properties.$distinct_ids = [id1, id2]. A $merge that
    # also had time, distinct_id and $insert_id used to pass as a usual event, unchecked.
    merge = make_event("$merge")
    if distinct_ids != "missing":
        merge["properties"]["$distinct_ids"] = distinct_ids

    response = post_import([make_event(), merge])

    assert _failed(response) == [(1, "properties.$distinct_ids")]
    assert [record["event"] for record in mixpanel_emulator.records("import")] == ["Signed Up"]


def test_import_still_accepts_a_merge_shaped_as_the_official_sdk_sends_it(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    sdk_merge = {"event": "$merge", "properties": {"$distinct_ids": ["a", "b"], "token": "t"}}
    with_fields = make_event("$merge", **{"$distinct_ids": ["c", "d"]})

    response = post_import([sdk_merge, with_fields])

    assert response.status_code == 200, response.text
    assert response.json()["num_records_imported"] == 2
    assert len(mixpanel_emulator.records("import")) == 2


def test_import_applies_the_record_limits_to_a_merge(post_import: PostImport) -> None:
    # MIXPANEL_API.md: fewer than 255 properties, nesting depth at most 3, for every record.
    ids = {"$distinct_ids": ["a", "b"]}
    too_many = {"event": "$merge", "properties": {**ids, **{f"p{i}": i for i in range(260)}}}
    too_deep = {"event": "$merge", "properties": {**ids, "d": {"a": {"b": {"c": {"x": 1}}}}}}
    too_long_list = {"event": "$merge", "properties": {**ids, "l": list(range(255))}}

    response = post_import([too_many, too_deep, too_long_list])

    assert _failed(response) == [
        (0, "properties"),
        (1, "properties.d.a.b.c"),
        (2, "properties.l"),
    ]


def test_import_truncates_the_long_strings_of_a_merge(
    mixpanel_emulator: Emulator, post_import: PostImport
) -> None:
    # MIXPANEL_API.md: strings longer than 255 characters are truncated, not rejected.
    merge = {"event": "$merge", "properties": {"$distinct_ids": ["a", "b"], "note": "n" * 400}}

    response = post_import([merge])

    assert response.status_code == 200, response.text
    (kept,) = mixpanel_emulator.records("import")
    assert kept["properties"]["note"] == "n" * 255
