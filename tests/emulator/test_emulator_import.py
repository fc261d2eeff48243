"""/import over real sockets: the three kinds of authentication and the per-record rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
MakeEvent = Callable[..., dict[str, Any]]
PostImport = Callable[..., requests.Response]


def _import(emulator: Emulator, event: dict[str, Any], **kwargs: Any) -> requests.Response:
    return requests.post(emulator.base_url + "/import", json=[event], **kwargs)


def test_service_account_with_matching_project_id_may_import(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    answer = _import(
        mixpanel_emulator, make_event(), auth=("sa-user", "sa-secret"), params={"project_id": 12345}
    )
    assert answer.status_code == 200
    assert answer.json() == {"code": 200, "num_records_imported": 1, "status": "OK"}


def test_api_secret_as_username_with_empty_password_may_import(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    answer = _import(mixpanel_emulator, make_event(), auth=("emulator-secret", ""))
    assert answer.status_code == 200


def test_project_token_as_username_may_import(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    assert _import(mixpanel_emulator, make_event(), auth=(TOKEN, "")).status_code == 200


def test_missing_credentials_are_401(mixpanel_emulator: Emulator, make_event: MakeEvent) -> None:
    answer = _import(mixpanel_emulator, make_event())
    assert answer.status_code == 401
    body = answer.json()
    assert body["code"] == 401
    assert body["status"] == "error"
    assert body["error"].startswith("Invalid credentials")
    assert mixpanel_emulator.records() == []


@pytest.mark.parametrize(
    ("auth", "kind"),
    [
        (("sa-user", "leaked-guess"), "wrong secret for service account 'sa-user'"),
        (("leaked-guess", ""), "neither the project API secret nor a project token"),
        (("someone", "leaked-guess"), "unknown service account"),
    ],
)
def test_wrong_credentials_are_401_naming_the_kind_never_the_secret(
    mixpanel_emulator: Emulator, make_event: MakeEvent, auth: tuple[str, str], kind: str
) -> None:
    answer = _import(mixpanel_emulator, make_event(), auth=auth, params={"project_id": "12345"})
    assert answer.status_code == 401
    assert kind in answer.json()["error"]
    assert "leaked-guess" not in answer.text


def test_service_account_without_project_id_is_401(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    answer = _import(mixpanel_emulator, make_event(), auth=("sa-user", "sa-secret"))
    assert answer.status_code == 401
    assert "project_id" in answer.json()["error"]


def test_service_account_with_an_empty_project_id_is_401_as_without_one(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    # Review R66 F5: "?project_id=" was read as the project id "" and answered 403.
    answer = _import(
        mixpanel_emulator, make_event(), auth=("sa-user", "sa-secret"), params={"project_id": ""}
    )
    assert answer.status_code == 401
    assert "needs the project_id" in answer.json()["error"]


def test_service_account_for_another_project_is_403(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    answer = _import(
        mixpanel_emulator,
        make_event(),
        auth=("sa-user", "sa-secret"),
        params={"project_id": "999"},
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == 403
    assert "sa-secret" not in answer.text


def test_disabled_api_secret_is_refused(make_event: MakeEvent) -> None:
    with Emulator(api_secret=None) as emulator:
        assert _import(emulator, make_event(), auth=("", "")).status_code == 401
        assert _import(emulator, make_event(), auth=("emulator-secret", "")).status_code == 401


def test_strict_import_reports_each_failed_record_and_keeps_the_valid_ones(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    good = make_event()
    bad = make_event(time="yesterday")
    answer = post_import([good, bad, make_event()])
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == 400
    assert body["status"] == "Bad Request"
    assert body["num_records_imported"] == 2
    assert body["failed_records"] == [
        {
            "index": 1,
            "insert_id": bad["properties"]["$insert_id"],
            "field": "properties.time",
            "message": "'properties.time' is invalid: must be seconds or milliseconds"
            " since the epoch",
        }
    ]
    assert [r["properties"]["$insert_id"] for r in mixpanel_emulator.records("import")] == [
        "insert-0",
        "insert-2",
    ]


def test_import_without_strict_drops_invalid_records_and_does_not_count_them(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    answer = post_import([make_event(), make_event(time=1.0)], strict=False)
    assert answer.status_code == 200
    assert answer.json() == {"code": 200, "num_records_imported": 1, "status": "OK"}
    assert len(mixpanel_emulator.records("import")) == 1
    assert mixpanel_emulator.stats()["rejected"]["import"] == 1


def test_verbose_import_answers_status_1_as_the_official_sdk_expects(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    answer = _import(mixpanel_emulator, make_event(), auth=(TOKEN, ""), params={"verbose": 1})
    assert answer.json() == {"code": 200, "num_records_imported": 1, "status": 1, "error": None}


PLACEHOLDERS = [
    "anon",
    "Anonymous",
    "NIL",
    "null",
    "None",
    "n/a",
    "NA",
    "True",
    "false",
    "<nil>",
    "lmy47d",
    "undefined",
    "unknown",
    "0",
    "-1",
    "[]",
    "{}",
    "00000000-0000-0000-0000-000000000000",
]


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_placeholder_distinct_ids_are_rejected_case_insensitively(
    make_event: MakeEvent, post_import: PostImport, placeholder: str
) -> None:
    body = post_import([make_event(distinct_id=placeholder)]).json()
    assert body["num_records_imported"] == 0
    assert body["failed_records"][0]["field"] == "properties.distinct_id"


def test_missing_distinct_id_is_rejected_but_empty_string_is_accepted(
    make_event: MakeEvent, post_import: PostImport
) -> None:
    missing = make_event()
    del missing["properties"]["distinct_id"]
    body = post_import([missing, make_event(distinct_id="")]).json()
    assert body["num_records_imported"] == 1
    assert body["failed_records"][0]["index"] == 0
    assert body["failed_records"][0]["field"] == "properties.distinct_id"


@pytest.mark.parametrize("insert_id", [None, "", "x" * 37, "has_underscore", "spa ce", 42])
def test_missing_or_malformed_insert_id_is_rejected(
    make_event: MakeEvent, post_import: PostImport, insert_id: object
) -> None:
    event = make_event()
    if insert_id is None:
        del event["properties"]["$insert_id"]
    else:
        event["properties"]["$insert_id"] = insert_id
    body = post_import([event]).json()
    assert body["num_records_imported"] == 0
    assert body["failed_records"][0]["field"] == "properties.$insert_id"


@pytest.mark.parametrize(
    "insert_id", ["a", "A-z-0-9", "x" * 36, "13c0b661-f48b-51cd-ba54-97c5999169c0"]
)
def test_insert_ids_of_1_to_36_alphanumerics_and_dashes_are_accepted(
    make_event: MakeEvent, post_import: PostImport, insert_id: str
) -> None:
    answer = post_import([make_event(**{"$insert_id": insert_id})])
    assert answer.json()["num_records_imported"] == 1


@pytest.mark.parametrize(
    ("event_time", "accepted"),
    [
        (31_535_999, False),  # one second before 1971-01-01
        (31_536_000, True),
        (31_536_000_000, True),  # the same instant in milliseconds
        (1_000_000_000, True),  # 2001, far older than /track allows
        ("now", False),
        (None, False),
    ],
)
def test_import_time_must_be_seconds_or_milliseconds_after_1971(
    make_event: MakeEvent, post_import: PostImport, event_time: object, accepted: bool
) -> None:
    event = make_event(time=event_time)
    if event_time is None:
        del event["properties"]["time"]
    assert post_import([event]).json()["num_records_imported"] == int(accepted)


@pytest.mark.parametrize("milliseconds", [False, True])
def test_import_time_more_than_an_hour_ahead_is_rejected(
    make_event: MakeEvent, post_import: PostImport, milliseconds: bool
) -> None:
    scale = 1000 if milliseconds else 1
    late = make_event(time=int((time.time() + 3700) * scale))
    soon = make_event(time=int((time.time() + 3500) * scale))
    body = post_import([late, soon]).json()
    assert body["num_records_imported"] == 1
    assert body["failed_records"][0]["index"] == 0
    assert "1 hour in the future" in body["failed_records"][0]["message"]


def test_records_with_255_properties_are_rejected_254_accepted(
    make_event: MakeEvent, post_import: PostImport
) -> None:
    def with_properties(count: int) -> dict[str, Any]:
        event = make_event()
        extra = count - len(event["properties"])
        event["properties"].update({f"p{i}": i for i in range(extra)})
        return event

    body = post_import([with_properties(254), with_properties(255)]).json()
    assert body["num_records_imported"] == 1
    assert [f["index"] for f in body["failed_records"]] == [1]
    assert body["failed_records"][0]["field"] == "properties"


def test_lists_and_objects_of_255_entries_are_rejected(
    make_event: MakeEvent, post_import: PostImport
) -> None:
    records = [
        make_event(items=list(range(254))),
        make_event(items=list(range(255))),
        make_event(nested={f"k{i}": i for i in range(255)}),
    ]
    body = post_import(records).json()
    assert body["num_records_imported"] == 1
    assert [(f["index"], f["field"]) for f in body["failed_records"]] == [
        (1, "properties.items"),
        (2, "properties.nested"),
    ]


def test_nesting_deeper_than_three_levels_is_rejected(
    make_event: MakeEvent, post_import: PostImport
) -> None:
    three = make_event(a={"b": [{"c": 1}]})
    four = make_event(a={"b": [{"c": {"d": 1}}]})
    body = post_import([three, four]).json()
    assert body["num_records_imported"] == 1
    assert body["failed_records"][0]["index"] == 1
    assert body["failed_records"][0]["field"] == "properties.a.b.0.c"


def test_a_record_of_1_mb_or_more_is_rejected(
    make_event: MakeEvent, post_import: PostImport
) -> None:
    big = make_event(blob="x" * 1_000_000)
    body = post_import([big, make_event()]).json()
    assert body["num_records_imported"] == 1
    assert body["failed_records"][0]["index"] == 0
    assert "1 MB" in body["failed_records"][0]["message"]


def test_strings_longer_than_255_characters_are_truncated_not_rejected(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    event = make_event(note="n" * 300, tags=["t" * 300], nested={"deep": "d" * 300})
    assert post_import([event]).status_code == 200
    stored = mixpanel_emulator.records("import")[0]["properties"]
    assert stored["note"] == "n" * 255
    assert stored["tags"] == ["t" * 255]
    assert stored["nested"] == {"deep": "d" * 255}


def test_records_without_event_name_or_properties_are_rejected(post_import: PostImport) -> None:
    body = post_import([{"properties": {}}, {"event": "x"}, "not an object"]).json()
    fields = [(f["index"], f["field"]) for f in body["failed_records"]]
    assert (0, "event") in fields
    assert (1, "properties") in fields
    assert (2, "") in fields


def test_a_merge_as_the_official_sdk_sends_it_is_accepted_without_time(
    post_import: PostImport,
) -> None:
    # $merge carries $distinct_ids and the token only: no time, distinct_id or $insert_id.
    merge = {"event": "$merge", "properties": {"$distinct_ids": ["a-1", "b-2"], "token": TOKEN}}
    answer = post_import([merge])
    assert answer.status_code == 200, answer.text
    assert answer.json()["num_records_imported"] == 1


@pytest.mark.parametrize(
    ("ids", "field"),
    [
        (["a-1"], "properties.$distinct_ids"),
        ("a-1", "properties.$distinct_ids"),
        (["a-1", ""], "properties.$distinct_ids[1]"),
        (["null", "b-2"], "properties.$distinct_ids[0]"),
    ],
)
def test_a_merge_without_two_real_ids_is_rejected_naming_the_field(
    post_import: PostImport, ids: object, field: str
) -> None:
    merge = {"event": "$merge", "properties": {"$distinct_ids": ids, "token": TOKEN}}
    answer = post_import([merge])
    assert answer.status_code == 400
    assert field in answer.text
