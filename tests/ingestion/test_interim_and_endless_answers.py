"""Answers no Mixpanel server gives but something on the way may (a CDN, a proxy, a broken
server), over real sockets: interim 1xx answers before the final one, a protocol switch
nobody asked for, and bodies without end (or that decode without end).

http.client skips only ``100 Continue``: a ``103 Early Hints`` was taken as the answer (the
records REJECTED although stored), and the real answer, still on its way, was read by the
next request on the connection as its own (a request answered 503 reported ACCEPTED: lost
without a word). A body was read whole: an endless one took the process to gigabytes of
memory until the request's time ran out, and a gzip bomb to gigabytes once decoded.
"""

from __future__ import annotations

import gzip
import resource
import socket
import time
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.ingestion.answer_body import MAX_ANSWER_BYTES
from mixpanel_core.settings import MixpanelSettings

from .conftest import TOKEN, event, import_event, settings_for
from .scripted import Answer, ScriptedServer, answer, raw

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
    return IngestionClient(settings, HttpOptions(**{"max_retries": 0, **options}))


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


def endless(head: bytes, piece: bytes) -> Answer:
    """Writes ``head``, then ``piece`` again and again (until the client closes)."""

    def write(sock: socket.socket) -> None:
        sock.sendall(head)
        while True:
            sock.sendall(piece)  # raises once the client has closed the connection
            time.sleep(0.001)  # about 64 MB a second: a failing client is not flooded

    return write


PIECE = b"x" * 65536


def endless_body(status: str) -> Answer:
    """``status`` with a chunked body that never ends."""
    head = f"HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    return endless(head, b"%x\r\n%s\r\n" % (len(PIECE), PIECE))


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    "endless",
    [
        endless_body("200 OK"),
        endless(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffff\r\n", PIECE),
        endless(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", PIECE),
        endless(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", PIECE),
    ],
    ids=["endless-chunks", "one-endless-chunk", "endless-length", "ends-with-connection"],
)
def test_an_endless_answer_is_refused_at_its_limit_and_the_request_made_again(
    scripted: Callable[..., ScriptedServer], endless: Answer
) -> None:
    """Not read until the request's time runs out (10 s here): refused past the limit, as
    no answer of Mixpanel's, and the request made again on a new connection (the rest of
    the body is not read by the next request as its answer)."""
    server = scripted(endless, answer(OK))
    client = client_for(server, read_timeout=5.0, max_retries=1, backoff_base=0.01)
    started = time.monotonic()

    (report,) = client.send_batch("track", [event()]).reports

    assert report.status is DeliveryStatus.ACCEPTED, report.reason
    assert report.attempts == 2
    assert time.monotonic() - started < 4
    assert len(server.requests) == 2


def test_an_endless_answer_that_never_succeeds_says_why_and_that_it_may_have_applied(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(endless_body("503 Service Unavailable"))
    client = client_for(server, read_timeout=5.0)

    (report,) = client.send_batch("track", [event()]).reports

    assert report.status is DeliveryStatus.FAILED
    assert f"(HTTP 503) has a body longer than {MAX_ANSWER_BYTES} bytes" in (report.reason or "")
    assert "may have applied" in (report.reason or "")


def test_a_gzip_bomb_is_refused_once_decoded_past_the_limit(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """512 MiB of zeros gzipped is 2 MiB: decoded whole it was 512 MiB."""
    zeros = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    bomb = b"".join(zeros.compress(b"\0" * 1024 * 1024) for _ in range(512)) + zeros.flush()
    assert len(bomb) < MAX_ANSWER_BYTES
    server = scripted(answer(raw("200 OK", bomb, "Content-Encoding: gzip")))
    client = client_for(server)
    before = peak_memory_mb()

    (report,) = client.send_batch("track", [event()]).reports

    assert report.status is DeliveryStatus.FAILED
    assert "once decoded" in (report.reason or "")
    assert peak_memory_mb() - before < 200


def test_an_answer_as_long_as_the_limit_is_read_whole_in_every_framing(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Its last byte closes the JSON: one byte less read, or one more, and the answer is
    no success. Sized, chunked, gzipped (decoded to the limit, in two gzip members), and
    deflated."""
    start = b'{"status": 1, "error": null'
    padded = start + b" " * (MAX_ANSWER_BYTES - len(start) - 1) + b"}"
    half = len(padded) // 2
    members = gzip.compress(padded[:half]) + gzip.compress(padded[half:])
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (padded[:1000], padded[1000:], b"")
    )
    server = scripted(
        answer(raw("200 OK", padded)),
        answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked),
        answer(raw("200 OK", members, "Content-Encoding: gzip")),
        answer(raw("200 OK", zlib.compress(padded), "Content-Encoding: deflate")),
        answer(OK),
    )
    client = client_for(server)

    results = [client.send_batch("track", [event()]) for _ in range(5)]

    assert [result.ok for result in results] == [True] * 5
    assert len(server.requests) == 5


def test_one_byte_past_the_limit_is_refused_in_every_framing(
    scripted: Callable[..., ScriptedServer],
) -> None:
    over = b" " * MAX_ANSWER_BYTES + b"1"
    server = scripted(
        answer(raw("200 OK", over)),
        answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
            % (len(over), over)
        ),
        answer(raw("200 OK", gzip.compress(over), "Content-Encoding: gzip")),
    )
    client = client_for(server)

    reports = [client.send_batch("track", [event()]).reports[0] for _ in range(3)]

    assert [report.status for report in reports] == [DeliveryStatus.FAILED] * 3
    assert all("longer than" in (report.reason or "") for report in reports), reports
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    "body",
    [gzip.compress(b"{}")[:-4], b"not gzip"],
    ids=["cut-short", "not-gzip"],
)
def test_a_gzip_answer_that_does_not_decode_is_retried(
    scripted: Callable[..., ScriptedServer], body: bytes
) -> None:
    server = scripted(answer(raw("200 OK", body, "Content-Encoding: gzip")), answer(OK))
    client = client_for(server, max_retries=1, backoff_base=0.01)

    (report,) = client.send_batch("track", [event()]).reports

    assert report.status is DeliveryStatus.ACCEPTED, report.reason
    assert report.attempts == 2


def test_an_empty_body_in_a_coding_is_empty_and_classified_by_its_status(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """A proxy's 401 with no page, marked gzip: fatal as any 401, not a body that fails to
    decode."""
    server = scripted(answer(raw("401 Unauthorized", b"", "Content-Encoding: gzip")))
    client = client_for(server)

    with pytest.raises(AuthenticationError) as refused:
        client.send_batch("track", [event()])

    (report,) = refused.value.reports
    assert (report.status, report.http_status) == (DeliveryStatus.FAILED, 401), report.reason
    assert "decode" not in (report.reason or "")


GZIPPED_OK = gzip.compress(OK.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize(
    "after",
    [b"\0" * 8, b"garbage", gzip.compress(b"")[:10]],
    ids=["zero-padding", "garbage", "a-member-cut-short"],
)
def test_what_follows_a_whole_gzip_member_and_is_not_one_is_left_as_urllib3_leaves_it(
    scripted: Callable[..., ScriptedServer], after: bytes
) -> None:
    """A success answer read as broken would be retried: records Mixpanel accepted sent
    again (a profile's ``$add`` applied twice)."""
    server = scripted(answer(raw("200 OK", GZIPPED_OK + after, "Content-Encoding: gzip")))

    (report,) = client_for(server).send_batch("track", [event()]).reports

    assert report.status is DeliveryStatus.ACCEPTED, report.reason
    assert len(server.requests) == 1


def test_more_gzip_members_than_a_server_writes_are_not_decoded(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Each member past the first cost a copy of the rest of the body: thousands of tiny
    members, which a server never writes, took seconds."""
    members = gzip.compress(b"") * 10_000 + GZIPPED_OK
    server = scripted(answer(raw("200 OK", members, "Content-Encoding: gzip")))

    (report,) = client_for(server).send_batch("track", [event()]).reports

    assert report.status is DeliveryStatus.FAILED
    assert "more than 16 members" in (report.reason or "")


@pytest.mark.parametrize(
    "body",
    [
        zlib.compress(OK.partition(b"\r\n\r\n")[2]),
        zlib.compress(OK.partition(b"\r\n\r\n")[2])[2:-4],
    ],
    ids=["zlib-wrapped", "raw"],
)
def test_deflate_is_read_zlib_wrapped_or_raw(
    scripted: Callable[..., ScriptedServer], body: bytes
) -> None:
    server = scripted(answer(raw("200 OK", body, "Content-Encoding: deflate")))

    (report,) = client_for(server).send_batch("track", [event()]).reports

    assert report.status is DeliveryStatus.ACCEPTED, report.reason


def test_a_zlib_body_cut_short_is_said_to_be_cut_short(
    scripted: Callable[..., ScriptedServer],
) -> None:
    cut = zlib.compress(OK.partition(b"\r\n\r\n")[2])[:-6]
    server = scripted(answer(raw("200 OK", cut, "Content-Encoding: deflate")))

    (report,) = client_for(server).send_batch("track", [event()]).reports

    assert report.status is DeliveryStatus.FAILED
    assert "deflate: the body is cut short" in (report.reason or "")


def test_a_strict_mode_400_listing_every_problem_of_a_whole_batch_is_read_and_classified(
    mixpanel_emulator: Emulator,
) -> None:
    """2,000 records with a dozen problems each: the emulator lists them all, in about 5 MB
    (over the first bound tried, 4 MiB, which retried them as a proxy's answer)."""
    blob = {"response": {f"item_{i}": {"attributes": {"v": i}} for i in range(12)}}
    records = [import_event(payload=blob) for _ in range(2000)]
    client = IngestionClient(settings_for(mixpanel_emulator), HttpOptions(max_retries=0))

    reports = client.send_batch("import", records).reports

    assert {(r.status, r.http_status, r.attempts) for r in reports} == {
        (DeliveryStatus.REJECTED, 400, 1)
    }
    assert mixpanel_emulator.client.stats()["requests"]["import"] == {"400": 1}
