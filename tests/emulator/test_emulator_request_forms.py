"""Two ways of writing a request that the emulator misread (review B, L1 and L4), over a raw
socket: an absolute-form target (``POST http://host:port/track``, which RFC 9112 section
3.2.2 says a server must accept) was answered 404; and a form whose ``data`` could not be
read got the bare ``0`` even when the form itself asked for ``verbose=1``, as the official
SDK does."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _post(
    emulator: Emulator, target: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    try:
        connection.request("POST", target, body, headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_an_absolute_form_target_is_served_as_its_path() -> None:
    event = {
        "event": "E",
        "properties": {
            "token": "emulator-token",
            "distinct_id": "u",
            "time": time.time(),
            "$insert_id": "absolute-1",
        },
    }
    with Emulator() as emulator:
        target = f"http://127.0.0.1:{emulator.port}/track?verbose=1"
        status, body = _post(emulator, target, json.dumps([event]).encode(), {})
        assert (status, json.loads(body)) == (200, {"status": 1, "error": None})
        assert [r["properties"]["$insert_id"] for r in emulator.records("track")] == ["absolute-1"]


def test_a_forms_own_verbose_is_honoured_when_its_data_cannot_be_read() -> None:
    with Emulator() as emulator:
        status, body = _post(emulator, "/track", b"data=%5Bnot-json&verbose=1", FORM)
        assert status == 400
        answer = json.loads(body)
        assert answer["status"] == 0
        assert "not valid JSON" in answer["error"]
        # Data that is not even UTF-8: the form's verbose=1 still counts.
        for form in (b"data=%FF%FE&verbose=1", b"data=%FF%FE&verbose=%31"):
            status, body = _post(emulator, "/track", form, FORM)
            assert (status, json.loads(body)["status"]) == (400, 0), form
        # Without verbose=1 anywhere: the bare 0, as before.
        assert _post(emulator, "/track", b"data=%5Bnot-json", FORM) == (400, b"0")
