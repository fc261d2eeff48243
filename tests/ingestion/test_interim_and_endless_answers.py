"""Answers no Mixpanel server gives but something on the way may (a CDN, a proxy, a broken
server), over real sockets: interim 1xx answers before the final one, and a protocol switch
nobody asked for.

http.client skips only ``100 Continue``: a ``103 Early Hints`` was taken as the answer (the
records REJECTED although stored), and the real answer, still on its way, was read by the
next request on the connection as its own (a request answered 503 reported ACCEPTED: lost
without a word).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.settings import MixpanelSettings

from .conftest import TOKEN, event
from .scripted import ScriptedServer, answer, raw

pytestmark = pytest.mark.integration

OK = raw("200 OK", b'{"status": 1, "error": null}')
UNAVAILABLE = answer(raw("503 Service Unavailable", b'{"error": "down"}'))


def interim_then(*interim: bytes) -> Callable[[socket.socket], None]:
    """Writes the interim answers ``interim`` at once, and the final ``200`` a moment later:
    long enough for a client that took an interim answer as final to send its next
    request on the same connection."""

    def write(sock: socket.socket) -> None:
        sock.sendall(b"".join(interim))
        time.sleep(0.3)
        sock.sendall(OK)

    return write


def client_for(server: ScriptedServer, **options: Any) -> IngestionClient:
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    return IngestionClient(settings, HttpOptions(max_retries=0, **options))


@pytest.mark.parametrize(
    "interim",
    [
        [b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"],
        [b"HTTP/1.1 102 Processing\r\n\r\n", b"HTTP/1.1 100 Continue\r\n\r\n"] * 2,
    ],
    ids=["103-early-hints", "102-and-100-repeated"],
)
def test_interim_answers_are_skipped_and_the_final_one_is_the_requests_own(
    scripted: Callable[..., ScriptedServer], interim: list[bytes]
) -> None:
    server = scripted(interim_then(*interim), UNAVAILABLE)
    client = client_for(server)

    (first,) = client.send_batch("track", [event()]).reports
    (second,) = client.send_batch("track", [event()]).reports

    assert first.status is DeliveryStatus.ACCEPTED, first.reason
    assert (second.status, second.http_status) == (DeliveryStatus.FAILED, 503)
    assert len(server.requests) == 2


def test_a_protocol_switch_nobody_asked_for_is_a_broken_answer_and_its_connection_is_dropped(
    scripted: Callable[..., ScriptedServer],
) -> None:
    switched = answer(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00")
    server = scripted(switched, answer(OK))
    client = client_for(server)

    (first,) = client.send_batch("track", [event()]).reports
    (second,) = client.send_batch("track", [event()]).reports

    assert first.status is DeliveryStatus.FAILED
    assert "101 Switching Protocols" in (first.reason or "")
    assert second.status is DeliveryStatus.ACCEPTED, second.reason
