"""Request-size limits over real sockets: records per request and body bytes."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
MakeEvent = Callable[..., dict[str, Any]]
PostImport = Callable[..., requests.Response]


def test_import_of_more_than_2000_records_is_400_and_stores_nothing(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    assert post_import([make_event() for _ in range(2000)]).status_code == 200
    answer = post_import([make_event() for _ in range(2001)])
    assert answer.status_code == 400
    assert answer.json()["code"] == 400
    assert "at most 2000" in answer.json()["error"]
    assert len(mixpanel_emulator.records("import")) == 2000


def test_track_of_more_than_2000_records_is_400_with_status_0(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    events = [make_event() for _ in range(2001)]
    answer = requests.post(mixpanel_emulator.base_url + "/track?verbose=1", json=events)
    assert answer.status_code == 400
    assert answer.json()["status"] == 0


def test_groups_accept_at_most_200_updates_per_request(mixpanel_emulator: Emulator) -> None:
    def updates(count: int) -> list[dict[str, Any]]:
        return [
            {"$token": TOKEN, "$group_key": "company", "$group_id": str(i), "$set": {"n": i}}
            for i in range(count)
        ]

    url = mixpanel_emulator.base_url + "/groups"
    assert requests.post(url, json=updates(200)).status_code == 200
    assert requests.post(url, json=updates(201)).status_code == 400


def test_records_per_request_limits_are_configurable(make_event: MakeEvent) -> None:
    with Emulator(max_records=3, max_group_records=1) as emulator:
        url = emulator.base_url + "/track"
        assert requests.post(url, json=[make_event() for _ in range(3)]).status_code == 200
        assert requests.post(url, json=[make_event() for _ in range(4)]).status_code == 400


def test_body_over_max_body_bytes_is_413_with_mixpanels_body(make_event: MakeEvent) -> None:
    with Emulator(max_body_bytes=10_000) as emulator:
        events = [make_event(pad="p" * 200) for _ in range(100)]
        answer = requests.post(
            emulator.base_url + "/import", json=events, auth=(TOKEN, ""), params={"strict": 1}
        )
        assert answer.status_code == 413
        assert answer.json() == {
            "code": 413,
            "error": "request exceeds max limit of 10000 bytes",
            "status": "Payload Too Large",
        }
        assert emulator.records() == []
        assert emulator.stats()["requests"]["import"] == {"413": 1}


def test_default_body_limit_is_2_mib(mixpanel_emulator: Emulator, make_event: MakeEvent) -> None:
    body = orjson.dumps([make_event(pad="p" * 200) for _ in range(2000)])
    body = body[:-1] + b"," + orjson.dumps(make_event(pad="p" * (2 * 1024 * 1024 - len(body))))
    body += b"]"
    assert len(body) > 2 * 1024 * 1024
    answer = requests.post(
        mixpanel_emulator.base_url + "/track",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert "2097152 bytes" in answer.json()["error"]


def test_gzip_bodies_are_limited_by_their_uncompressed_size(make_event: MakeEvent) -> None:
    with Emulator(max_body_bytes=20_000) as emulator:
        events = [make_event(pad="p" * 200) for _ in range(200)]
        compressed = gzip.compress(orjson.dumps(events))
        assert len(compressed) < 20_000
        answer = requests.post(
            emulator.base_url + "/import",
            data=compressed,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            auth=(TOKEN, ""),
        )
        assert answer.status_code == 413


def test_the_connection_stays_usable_after_a_413(make_event: MakeEvent) -> None:
    with Emulator(max_body_bytes=5_000) as emulator:
        session = requests.Session()
        url = emulator.base_url + "/track"
        too_big = [make_event(pad="p" * 200) for _ in range(100)]
        assert session.post(url, json=too_big).status_code == 413
        assert session.post(url, json=make_event()).text == "1"


def test_a_gzipped_record_of_1_mb_is_still_rejected(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    events = [make_event(blob="x" * 1_000_000), make_event()]
    answer = requests.post(
        mixpanel_emulator.base_url + "/import?strict=1",
        data=gzip.compress(orjson.dumps(events)),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        auth=(TOKEN, ""),
    )
    assert answer.json()["num_records_imported"] == 1
    assert answer.json()["failed_records"][0]["index"] == 0


def test_an_unframeable_request_is_400_and_the_connection_closed(
    mixpanel_emulator: Emulator,
) -> None:
    with socket.create_connection(("127.0.0.1", mixpanel_emulator.port), timeout=5) as raw:
        raw.sendall(b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n")
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in answer


def test_the_connection_stays_usable_after_a_413_however_large_the_body(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    """A body over max_body_bytes is read to its end and dropped, 65 MiB as well as 3 MiB,
    so that the next request on the connection is answered."""
    size = 65 * 1024 * 1024
    piece = b"x" * (1024 * 1024)
    event = orjson.dumps(make_event())
    next_request = (
        b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(event), event)
    )
    with socket.create_connection(("127.0.0.1", mixpanel_emulator.port), timeout=10) as raw:
        raw.sendall(b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(piece)):
            raw.sendall(piece)
        raw.sendall(next_request)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.count(b"HTTP/1.1 200 ") == 1
    assert answer.endswith(b"\r\n\r\n1")
    assert len(mixpanel_emulator.records("track")) == 1
