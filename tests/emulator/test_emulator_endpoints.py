"""/track, /engage, /groups and /import over real sockets: body formats, answers, tokens."""

from __future__ import annotations

import gzip
import http.client
import time
from collections.abc import Callable
from typing import Any

import mixpanel
import orjson
import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
MakeEvent = Callable[..., dict[str, Any]]


def _consumer(emulator: Emulator) -> mixpanel.Consumer:
    base = emulator.base_url
    return mixpanel.Consumer(
        events_url=base + "/track",
        people_url=base + "/engage",
        groups_url=base + "/groups",
        import_url=base + "/import",
        retry_limit=0,
        credentials=mixpanel.ServiceAccountCredentials("sa-user", "sa-secret", "12345"),
    )


def test_official_sdk_track_people_groups_and_import_are_accepted(
    mixpanel_emulator: Emulator,
) -> None:
    mp = mixpanel.Mixpanel(TOKEN, consumer=_consumer(mixpanel_emulator))
    mp.track("user-1", "Signed Up", {"plan": "pro"})
    mp.people_set("user-1", {"name": "Ada"})
    mp.group_set("company", "acme", {"size": 10})
    mp.import_data(TOKEN, "user-1", "Old Event", int(time.time()) - 30 * 86400)

    track = mixpanel_emulator.records("track")
    assert [r["event"] for r in track] == ["Signed Up"]
    assert track[0]["properties"]["plan"] == "pro"
    assert mixpanel_emulator.records("engage")[0]["$set"] == {"name": "Ada"}
    assert mixpanel_emulator.records("groups")[0]["$group_id"] == "acme"
    assert mixpanel_emulator.records("import")[0]["event"] == "Old Event"


def test_track_accepts_a_form_encoded_array_in_data(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    events = [make_event(), make_event()]
    answer = requests.post(
        mixpanel_emulator.base_url + "/track", data={"data": orjson.dumps(events).decode()}
    )
    assert (answer.status_code, answer.text) == (200, "1")
    assert mixpanel_emulator.records("track") == events


def test_track_accepts_base64_form_data_like_older_sdks(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    import base64

    event = make_event()
    data = base64.b64encode(orjson.dumps(event)).decode()
    answer = requests.post(mixpanel_emulator.base_url + "/track", data={"data": data})
    assert answer.text == "1"
    assert mixpanel_emulator.records("track") == [event]


@pytest.mark.parametrize("shape", ["array", "object"])
def test_track_accepts_a_json_body_array_or_single_object(
    mixpanel_emulator: Emulator, make_event: MakeEvent, shape: str
) -> None:
    event = make_event()
    body: Any = [event] if shape == "array" else event
    answer = requests.post(mixpanel_emulator.base_url + "/track", json=body)
    assert answer.text == "1"
    assert mixpanel_emulator.records("track") == [event]


def test_import_accepts_an_ndjson_body(mixpanel_emulator: Emulator, make_event: MakeEvent) -> None:
    events = [make_event(), make_event()]
    answer = requests.post(
        mixpanel_emulator.base_url + "/import",
        data=b"\n".join(orjson.dumps(e) for e in events) + b"\n",
        headers={"Content-Type": "application/x-ndjson"},
        auth=(TOKEN, ""),
    )
    assert answer.json() == {"code": 200, "num_records_imported": 2, "status": "OK"}
    assert mixpanel_emulator.records("import") == events


def test_ndjson_is_refused_outside_import(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    answer = requests.post(
        mixpanel_emulator.base_url + "/track?verbose=1",
        data=orjson.dumps(make_event()),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 400
    assert answer.json()["status"] == 0


def test_gzip_bodies_are_inflated(mixpanel_emulator: Emulator, make_event: MakeEvent) -> None:
    events = [make_event() for _ in range(3)]
    answer = requests.post(
        mixpanel_emulator.base_url + "/import",
        data=gzip.compress(orjson.dumps(events)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        auth=(TOKEN, ""),
    )
    assert answer.json()["num_records_imported"] == 3


def test_chunked_bodies_are_read(mixpanel_emulator: Emulator, make_event: MakeEvent) -> None:
    events = [make_event() for _ in range(3)]
    chunks = (orjson.dumps(events)[i : i + 50] for i in range(0, 10_000, 50))
    answer = requests.post(
        mixpanel_emulator.base_url + "/track",
        data=chunks,
        headers={"Content-Type": "application/json"},
    )
    assert answer.text == "1"
    assert mixpanel_emulator.records("track") == events


def test_verbose_answers_status_and_error_instead_of_bare_digit(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    url = mixpanel_emulator.base_url + "/track"
    assert requests.post(url, json=make_event()).text == "1"
    assert requests.post(url, params={"verbose": "1"}, json=make_event()).json() == {
        "status": 1,
        "error": None,
    }
    assert requests.post(url, json=make_event(token="wrong")).text == "0"


def test_wrong_or_missing_token_makes_the_record_invalid_with_status_0_and_http_200(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    good, wrong = make_event(), make_event(token="not-the-token")
    missing = make_event()
    del missing["properties"]["token"]
    answer = requests.post(
        mixpanel_emulator.base_url + "/track?verbose=1", json=[good, wrong, missing]
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == 0
    assert "record 1: properties.token" in body["error"]
    assert "record 2: properties.token" in body["error"]
    assert "not-the-token" not in body["error"]
    # Like /import, the valid records of the request are kept.
    assert mixpanel_emulator.records("track") == [good]
    assert mixpanel_emulator.stats()["rejected"]["track"] == 2


def test_configured_tokens_are_all_accepted(make_event: MakeEvent) -> None:
    with Emulator(tokens=("first", "second")) as emulator:
        events = [make_event(token="first"), make_event(token="second")]
        answer = requests.post(emulator.base_url + "/track", json=events)
        assert answer.text == "1"


def test_track_drops_events_older_than_five_days_and_answers_success(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    old = make_event(time=time.time() - 5 * 86400 - 60)
    recent = make_event(time=time.time() - 4 * 86400)
    answer = requests.post(mixpanel_emulator.base_url + "/track?verbose=1", json=[old, recent])
    assert answer.json() == {"status": 1, "error": None}
    assert mixpanel_emulator.records("track") == [recent]


def test_track_accepts_events_without_time_distinct_id_or_insert_id(
    mixpanel_emulator: Emulator,
) -> None:
    event = {"event": "Ping", "properties": {"token": TOKEN}}
    answer = requests.post(mixpanel_emulator.base_url + "/track", json=event)
    assert answer.text == "1"


def test_engage_requires_the_project_token_and_distinct_id(mixpanel_emulator: Emulator) -> None:
    url = mixpanel_emulator.base_url + "/engage?verbose=1"
    good = {"$token": TOKEN, "$distinct_id": "u1", "$set": {"plan": "pro"}}
    assert requests.post(url, json=good).json()["status"] == 1
    wrong_token = {**good, "$token": "nope"}
    assert "$token" in requests.post(url, json=wrong_token).json()["error"]
    no_id = {"$token": TOKEN, "$set": {"plan": "pro"}}
    assert "$distinct_id" in requests.post(url, json=no_id).json()["error"]
    no_operation = {"$token": TOKEN, "$distinct_id": "u1"}
    assert "no operation" in requests.post(url, json=no_operation).json()["error"]
    assert mixpanel_emulator.records("engage") == [good]


def test_groups_requires_group_key_and_group_id(mixpanel_emulator: Emulator) -> None:
    url = mixpanel_emulator.base_url + "/groups?verbose=1"
    good = {"$token": TOKEN, "$group_key": "company", "$group_id": "acme", "$set": {"size": 3}}
    assert requests.post(url, json=good).json()["status"] == 1
    error = requests.post(url, json={"$token": TOKEN, "$set": {"size": 3}}).json()["error"]
    assert "$group_key" in error
    assert "$group_id" in error


def test_profile_updates_are_never_deduplicated(mixpanel_emulator: Emulator) -> None:
    update = {"$token": TOKEN, "$distinct_id": "u1", "$add": {"logins": 1}}
    url = mixpanel_emulator.base_url + "/engage"
    assert requests.post(url, json=[update, update]).text == "1"
    assert mixpanel_emulator.records("engage") == [update, update]
    stats = mixpanel_emulator.stats()
    assert (stats["unique_events"], stats["duplicate_events"]) == (0, 0)


def test_malformed_json_is_a_400_for_the_whole_request(mixpanel_emulator: Emulator) -> None:
    answer = requests.post(
        mixpanel_emulator.base_url + "/track?verbose=1",
        data=b"[{not json",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["status"] == 0
    assert mixpanel_emulator.records() == []


def test_ingestion_endpoints_answer_only_post(mixpanel_emulator: Emulator) -> None:
    answer = requests.get(mixpanel_emulator.base_url + "/track")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"
    assert requests.post(mixpanel_emulator.base_url + "/nowhere").status_code == 404


def test_keep_alive_connection_serves_many_requests(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", mixpanel_emulator.port)
    connection.connect()
    first_socket = connection.sock
    for _ in range(20):
        connection.request(
            "POST", "/track", orjson.dumps(make_event()), {"Content-Type": "application/json"}
        )
        assert connection.getresponse().read() == b"1"
    # http.client reconnects silently when the server closes: the socket must be the same one.
    assert connection.sock is first_socket
    connection.close()
