"""Few socket calls per request, over real sockets against the emulator.

Every socket call lets go of the interpreter lock, and a sender thread waits up to the switch
interval (5 ms) to get it back from a caller busy tracking: ``buffered_http``'s sender fell
behind such a caller while each request made five or six calls. A request now writes its
head and body at once (see ``request_watch._AnswerNoted``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.ingestion.request_watch import _AnswerNoted, _WatchedHTTPConnection

from .conftest import event

pytestmark = pytest.mark.integration

_writes: list[bytes] | None = None
"""What our connections hand to the socket, one item per write, while a test records it."""


def _record_writes(name: str, args: tuple[Any, ...]) -> None:
    # http.client audits every write it makes. An audit hook cannot be removed: it records
    # only while a test has set the list, and only our connections' writes.
    if name == "http.client.send" and _writes is not None and isinstance(args[0], _AnswerNoted):
        _writes.append(bytes(args[1]))


sys.addaudithook(_record_writes)


@pytest.fixture
def writes() -> Iterator[list[bytes]]:
    global _writes
    _writes = []
    try:
        yield _writes
    finally:
        _writes = None


def test_a_request_is_written_in_one_piece_head_and_body(
    client: IngestionClient, writes: list[bytes], mixpanel_emulator: Emulator
) -> None:
    for n in range(3):
        assert client.send_batch("track", [event(n=n) for _ in range(50)]).ok
    assert len(writes) == 3
    for written in writes:
        head, _, body = written.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /track")
        assert f"Content-Length: {len(body)}".encode() in head
        assert body.startswith(b"data=")
    assert len(mixpanel_emulator.insert_ids("track")) == 150


def test_a_request_without_a_body_is_written_too(
    writes: list[bytes], mixpanel_emulator: Emulator
) -> None:
    """The head held back for the body is written when no body comes (no request of ours is
    made without one, but the connection class must not swallow a request)."""
    conn = _WatchedHTTPConnection("127.0.0.1", mixpanel_emulator.port, timeout=5)
    try:
        conn.request("GET", "/_emulator/stats")
        answer = conn.getresponse()
        assert answer.status == 200
        assert b'"accepted"' in answer.data
    finally:
        conn.close()
    assert len(writes) == 1
    assert writes[0].startswith(b"GET /_emulator/stats HTTP/1.1\r\n")
    assert writes[0].endswith(b"\r\n\r\n")
