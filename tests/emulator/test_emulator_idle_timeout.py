"""The idle timeout over real sockets: the emulator closes a keep-alive connection that sends
nothing for ``idle_timeout`` seconds, as a real server does, and clients must cope."""

from __future__ import annotations

import socket
import time

import orjson
import pytest
import requests

from mixpanel_core.emulator import Emulator, EmulatorError, EmulatorProcess
from mixpanel_core.frozen import freeze
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.messages import Event
from mixpanel_core.settings import MixpanelSettings

pytestmark = pytest.mark.integration

IDLE = 0.3
TRACK = b"POST /track HTTP/1.1\r\nHost: emulator\r\nContent-Length: 0\r\n\r\n"


def _answered_then_closed(base_url: str) -> float:
    """Send one request on a new connection, read its answer, and return how many seconds
    after it the emulator closed the connection (recv gives up after 5 s)."""
    host, _, port = base_url.removeprefix("http://").rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(TRACK)
        assert raw.recv(65536).startswith(b"HTTP/1.1 400 ")  # an empty body, still answered
        answered = time.monotonic()
        assert raw.recv(65536) == b""  # the close; a TimeoutError here fails the test
        return time.monotonic() - answered


def test_a_connection_idle_for_the_idle_timeout_is_closed() -> None:
    with Emulator(idle_timeout=IDLE) as emulator:
        assert IDLE / 2 <= _answered_then_closed(emulator.base_url) < IDLE + 2


def test_the_idle_timeout_reaches_an_emulator_process_through_its_command_line() -> None:
    with EmulatorProcess(idle_timeout=IDLE) as emulator:
        assert IDLE / 2 <= _answered_then_closed(emulator.base_url) < IDLE + 2


@pytest.mark.parametrize("seconds", [0, -1, 1e12, float("nan")])
def test_an_idle_timeout_out_of_bounds_is_refused(seconds: float) -> None:
    with pytest.raises(EmulatorError, match="idle_timeout must be seconds above 0"):
        Emulator(idle_timeout=seconds)


def _event(insert_id: str) -> Event:
    record = {
        "event": "Signed Up",
        "properties": {
            "token": "emulator-token",
            "distinct_id": "user-1",
            "time": time.time(),
            "$insert_id": insert_id,
        },
    }
    return Event(freeze(record, Event.kind))


def test_the_ingestion_client_delivers_once_on_a_pooled_connection_the_emulator_closed() -> None:
    """The client's pooled connection is closed by the emulator while idle; the next send
    reaches Mixpanel on a new connection, and each record arrives exactly once."""
    with Emulator(idle_timeout=IDLE) as emulator:
        settings = MixpanelSettings(api_host=emulator.base_url, token="emulator-token")
        client = IngestionClient(settings, HttpOptions(backoff_base=0.001, backoff_cap=0.002))
        assert client.send_batch("track", [_event("before-idle")]).ok
        time.sleep(IDLE * 3)  # the emulator closes the kept-alive connection meanwhile
        result = client.send_batch("track", [_event("after-idle")])
        assert result.ok
        assert emulator.insert_ids("track") == ["before-idle", "after-idle"]
        # In-process stats open no connection: the second one is the client's new connection.
        assert emulator.stats()["connections"] == 2


def test_an_answer_a_client_is_slow_to_read_is_sent_whole() -> None:
    """The idle timeout is the client's silence, not the time an answer takes to leave: an
    answer bigger than the sockets' buffers, read only after several idle timeouts, arrives
    whole."""
    padding = {f"pad-{number}": "p" * 250 for number in range(30)}
    records = [
        {
            "event": "Signed Up",
            "properties": {"token": "emulator-token", "time": time.time(), **padding},
        }
        for _ in range(1300)
    ]
    with Emulator(idle_timeout=IDLE, max_body_bytes=16 * 1024 * 1024) as emulator:
        sent = requests.post(emulator.base_url + "/track", data=orjson.dumps(records))
        assert sent.text == "1"
        with socket.socket() as raw:
            # A small receive buffer: the emulator blocks writing the 10 MB answer.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            raw.settimeout(5)
            raw.connect(("127.0.0.1", emulator.port))
            raw.sendall(b"GET /_emulator/records HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            time.sleep(IDLE * 3)
            answer = raw.makefile("rb").read()
    head, _, received = answer.partition(b"\r\n\r\n")
    assert len(received) > 8 * 1024 * 1024
    assert f"Content-Length: {len(received)}".encode() in head
    assert len(orjson.loads(received)) == len(records)
