"""Audit of the emulator beyond /track and /import validation: body encodings of /engage and
/groups, methods, fault headers, the Python control API and the command line."""

from __future__ import annotations

import gzip
import http.client
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from mixpanel_core.emulator import Emulator, EmulatorError

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]
TOKEN = "emulator-token"
SERVICE_ACCOUNT = ("sa-user", "sa-secret")

UPDATE = {"$token": TOKEN, "$distinct_id": "u1", "$set": {"plan": "pro"}}
GROUP_UPDATE = {"$token": TOKEN, "$group_key": "company", "$group_id": "acme", "$set": {"n": 3}}
GZIP_JSON = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda body: body[:-8], id="trailer-missing"),
        pytest.param(lambda body: body + b"not gzip", id="trailing-bytes"),
    ],
)
def test_engage_refuses_a_gzip_body_that_is_not_whole_gzip_data(
    mixpanel_emulator: Emulator, mangle: Callable[[bytes], bytes]
) -> None:
    # Any gzip reader refuses these; zlib alone returns what it could inflate.
    body = gzip.compress(orjson.dumps([UPDATE] * 50))
    answer = requests.post(
        mixpanel_emulator.base_url + "/engage?verbose=1",
        data=mangle(body),
        headers=GZIP_JSON,
    )
    assert answer.status_code == 400
    assert answer.json()["status"] == 0
    assert "gzip" in answer.json()["error"]
    assert mixpanel_emulator.records() == []


def test_import_refuses_a_gzip_ndjson_body_missing_its_trailer(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    lines = b"\n".join(orjson.dumps(make_event()) for _ in range(3))
    answer = requests.post(
        mixpanel_emulator.base_url + "/import",
        data=gzip.compress(lines)[:-8],
        params={"project_id": "12345", "strict": "1"},
        auth=SERVICE_ACCOUNT,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 400
    assert mixpanel_emulator.records() == []


def test_groups_accepts_a_gzip_body_of_several_members(mixpanel_emulator: Emulator) -> None:
    # Concatenated gzip members are one valid gzip stream (RFC 1952).
    text = orjson.dumps([GROUP_UPDATE] * 3)
    body = gzip.compress(text[:20]) + gzip.compress(text[20:])
    answer = requests.post(
        mixpanel_emulator.base_url + "/groups?verbose=1", data=body, headers=GZIP_JSON
    )
    assert answer.json() == {"status": 1, "error": None}
    assert mixpanel_emulator.records("groups") == [GROUP_UPDATE] * 3


def test_gzip_members_together_are_held_to_the_body_limit() -> None:
    text = orjson.dumps([UPDATE] * 40)
    with Emulator(max_body_bytes=len(text) - 1) as emulator:
        half = len(text) // 2
        body = gzip.compress(text[:half]) + gzip.compress(text[half:])
        answer = requests.post(emulator.base_url + "/engage", data=body, headers=GZIP_JSON)
        assert answer.status_code == 413
        assert emulator.records() == []


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_but_post_is_405_on_an_ingestion_endpoint(
    mixpanel_emulator: Emulator, method: str
) -> None:
    answer = requests.request(method, mixpanel_emulator.base_url + "/engage", json=UPDATE)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"
    assert answer.json()["code"] == 405
    assert mixpanel_emulator.records() == []


def test_head_is_405_without_a_body_and_the_connection_stays_usable(
    mixpanel_emulator: Emulator,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", mixpanel_emulator.port, timeout=5)
    try:
        connection.request("HEAD", "/track")
        head = connection.getresponse()
        assert head.status == 405
        assert head.read() == b""
        first_socket = connection.sock
        connection.request(
            "POST", "/engage", orjson.dumps(UPDATE), {"Content-Type": "application/json"}
        )
        assert connection.getresponse().read() == b"1"
        assert connection.sock is first_socket
    finally:
        connection.close()


def test_a_wrong_method_on_a_control_route_is_404(mixpanel_emulator: Emulator) -> None:
    answer = requests.put(mixpanel_emulator.base_url + "/_emulator/faults", json={})
    assert answer.status_code == 404
    assert "error" in answer.json()


def test_retry_after_is_written_in_plain_digits(mixpanel_emulator: Emulator) -> None:
    # "{:g}" wrote 1e+06; fractions stay as given, for tests that want sub-second waits.
    cases = [(1_000_000, "1000000"), (1_234_567, "1234567"), (2, "2"), (2.5, "2.5")]
    for seconds, _ in cases:
        mixpanel_emulator.fail_next(1, 429, retry_after=seconds)
    for _, header in cases:
        answer = requests.post(mixpanel_emulator.base_url + "/engage", json=UPDATE)
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == header


def test_wait_for_records_reads_endpoint_names_as_records_does(
    mixpanel_emulator: Emulator,
) -> None:
    requests.post(mixpanel_emulator.base_url + "/engage", json=UPDATE)
    assert mixpanel_emulator.wait_for_records(1, "/engage", timeout=1) == [UPDATE]
    with pytest.raises(EmulatorError, match="unknown endpoint"):
        mixpanel_emulator.wait_for_records(1, "people", timeout=1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_out_of_range_port_is_an_emulator_error() -> None:
    with pytest.raises(EmulatorError, match=r"cannot listen on 127\.0\.0\.1:70000"):
        Emulator(port=70000).start()


def test_an_unopenable_record_file_is_an_emulator_error_and_frees_the_port(
    tmp_path: Path,
) -> None:
    port = _free_port()
    missing = tmp_path / "no-such-dir" / "records.jsonl"
    with pytest.raises(EmulatorError, match="cannot open the record file") as caught:
        Emulator(port=port, record_file=missing).start()
    # The error (and its traceback) still alive, the port must be free again.
    assert caught.value is not None
    with Emulator(port=port) as emulator:
        assert emulator.port == port


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--port", "70000"], "cannot listen on 127.0.0.1:70000"),
        (["--port", "0", "--record-file", "/nonexistent-dir/records.jsonl"], "record file"),
    ],
)
def test_the_emulator_command_exits_2_with_a_message_for_settings_it_cannot_use(
    options: list[str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mixpanel_core.cli", "emulator", *options],
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
