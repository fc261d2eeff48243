"""Records that fail after a request that may have reached Mixpanel without an answer (a read
timeout, a connection lost part way) say that Mixpanel may have applied them, also when a
later attempt failed otherwise: a dead letter of a profile ``$add`` replayed would be applied
twice. A request that cannot have been sent (no connection) says nothing of the kind. Before,
a read timeout's reason was urllib3's words alone (found by review H1)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import attrs
import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.ingestion.call import MAYBE_APPLIED
from mixpanel_core.messages import Endpoint, Message
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, RecordingWait, event, profile, settings_for
from .scripted import ScriptedServer, answer

pytestmark = pytest.mark.integration

LATENCY = 1.0
"""Seconds the emulator waits before it takes a request: five times the read timeout."""


def _client(emulator: Emulator, **options: object) -> IngestionClient:
    return IngestionClient(settings_for(emulator), attrs.evolve(FAST, **options))


def _applied(emulator: Emulator, count: int) -> list[object]:
    deadline = time.monotonic() + 10
    while len(records := emulator.client.records("engage")) < count:
        assert time.monotonic() < deadline, records
        time.sleep(0.02)
    return records


def test_a_read_timeout_given_up_on_says_mixpanel_may_have_applied_it(
    mixpanel_emulator: Emulator,
) -> None:
    client = _client(mixpanel_emulator, read_timeout=0.2, max_retries=0)
    mixpanel_emulator.client.set_latency(LATENCY)
    result = client.send_batch("engage", [profile(n=1)], wait=RecordingWait())
    (report,) = result.reports
    assert report.status is DeliveryStatus.FAILED
    assert f"ReadTimeoutError: {mixpanel_emulator.base_url}: Read timed out" in (
        report.reason or ""
    )
    assert (report.reason or "").endswith(MAYBE_APPLIED)
    assert len(_applied(mixpanel_emulator, 1)) == 1  # and it was: the words are no idle fear


def test_the_doubt_outlives_a_later_attempt_that_failed_otherwise(
    mixpanel_emulator: Emulator,
) -> None:
    client = _client(mixpanel_emulator, read_timeout=0.2, max_retries=1)
    mixpanel_emulator.client.set_latency(LATENCY)

    def then_unavailable() -> None:
        mixpanel_emulator.client.set_latency(0)
        mixpanel_emulator.client.fail_next(5, 503, endpoints=["engage"])

    result = client.send_batch("engage", [profile(n=2)], wait=RecordingWait(then_unavailable))
    (report,) = result.reports
    assert (report.status, report.http_status, report.attempts) == (DeliveryStatus.FAILED, 503, 2)
    assert (report.reason or "").endswith(MAYBE_APPLIED)


def test_a_connection_lost_after_mixpanel_applied_the_request_says_so(
    mixpanel_emulator: Emulator,
) -> None:
    client = _client(mixpanel_emulator, max_retries=0)
    mixpanel_emulator.client.drop_next(1, endpoints=["engage"], after_applying=True)
    result = client.send_batch("engage", [profile(n=4)], wait=RecordingWait())
    (report,) = result.reports
    assert report.status is DeliveryStatus.FAILED
    assert "ProtocolError" in (report.reason or "")
    assert (report.reason or "").endswith(MAYBE_APPLIED)
    assert len(mixpanel_emulator.client.records("engage")) == 1


def test_the_doubt_reaches_the_halves_of_a_split_and_a_rejection(
    mixpanel_emulator: Emulator,
) -> None:
    """Review R9: after a 413 split, the halves' outcomes lost the doubt; a record rejected
    on the retry never had it."""
    client = _client(mixpanel_emulator, max_retries=1)
    faults = mixpanel_emulator.client
    faults.drop_next(1, endpoints=["engage"], after_applying=True)
    faults.fail_next(1, 413, endpoints=["engage"])
    faults.fail_next(4, 503, endpoints=["engage"])  # each half, and its one retry
    result = client.send_batch("engage", [profile(n=5), profile(n=6)], wait=RecordingWait())
    assert [(r.status, r.http_status) for r in result.reports] == [(DeliveryStatus.FAILED, 503)] * 2
    assert all((r.reason or "").endswith(MAYBE_APPLIED) for r in result.reports)
    assert len(faults.records("engage")) == 2  # the first attempt was applied
    faults.reset()
    faults.drop_next(1, endpoints=["engage"], after_applying=True)
    faults.fail_next(1, 400, endpoints=["engage"])
    # A new client: on a kept-alive connection, a close before any byte of the answer is
    # taken for the server's idle timeout, and the request made again at once (see
    # docs/ingestion.md), not retried as an attempt.
    client = _client(mixpanel_emulator, max_retries=1)
    (report,) = client.send_batch("engage", [profile(n=7)], wait=RecordingWait()).reports
    assert (report.status, report.http_status) == (DeliveryStatus.REJECTED, 400)
    assert (report.reason or "").endswith(MAYBE_APPLIED)


def test_no_connection_made_says_nothing_of_the_kind() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings = MixpanelSettings(api_host=f"http://127.0.0.1:{port}", token=TOKEN)
    client = IngestionClient(settings, attrs.evolve(FAST, max_retries=1))
    result = client.send_batch("engage", [profile(n=3)], wait=RecordingWait())
    (report,) = result.reports
    assert report.status is DeliveryStatus.FAILED
    # The server named, not our connection class (review R9).
    assert f"NewConnectionError: http://127.0.0.1:{port}: Failed" in (report.reason or "")
    assert MAYBE_APPLIED not in (report.reason or "")


def test_a_tls_handshake_cut_short_says_nothing_of_the_kind() -> None:
    """Review R10: a server closing the connection during the TLS handshake made the records
    "maybe applied", and the forwarder dead-lettered profile updates no byte of which left."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def close_every_connection() -> None:
            with contextlib.suppress(OSError):
                while True:
                    connection, _ = server.accept()
                    connection.close()

        threading.Thread(target=close_every_connection, daemon=True).start()
        settings = MixpanelSettings(api_host=f"https://127.0.0.1:{port}", token=TOKEN)
        client = IngestionClient(settings, attrs.evolve(FAST, max_retries=1))
        (report,) = client.send_batch("engage", [profile(n=8)], wait=RecordingWait()).reports
    assert report.status is DeliveryStatus.FAILED
    assert report.attempts == 2  # retried: a handshake cut short may succeed next time
    assert not report.maybe_applied
    assert MAYBE_APPLIED not in (report.reason or ""), report.reason


def _answer_once_then_apply_and_vanish(server: socket.socket, applied: list[bytes]) -> None:
    """On one kept-alive connection: answer the first request; read the second (``applied``
    holds each body read), then close the connection and stop listening, without an answer:
    a server that took the request, then went down."""
    with contextlib.suppress(OSError):
        connection, _ = server.accept()
        with connection:
            reader = connection.makefile("rb")
            for n in range(2):
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                applied.append(reader.read(length))
                if n == 0:
                    body = b'{"status": 1, "error": null}'
                    connection.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
            server.close()  # the try made again at once finds nothing listening


def _second_request_to_a_server_that_applies_it_and_vanishes(
    endpoint: Endpoint, records: list[Message]
) -> tuple[DeliveryReport, list[bytes]]:
    """The report of ``records[1]``, sent under ``max_retries = 0`` on the kept-alive
    connection of ``records[0]`` to a server that reads it whole, then closes the connection
    without an answer and stops listening; and the bodies the server read."""
    applied: list[bytes] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        serving = threading.Thread(
            target=_answer_once_then_apply_and_vanish, args=(server, applied), daemon=True
        )
        serving.start()
        settings = MixpanelSettings(api_host=f"http://127.0.0.1:{port}", token=TOKEN)
        client = IngestionClient(settings, attrs.evolve(FAST, max_retries=0))
        (first,) = client.send_batch(endpoint, records[:1], wait=RecordingWait()).reports
        assert first.status is DeliveryStatus.ACCEPTED
        (report,) = client.send_batch(endpoint, records[1:], wait=RecordingWait()).reports
        serving.join(10)
    return report, applied


def test_a_request_made_again_at_once_keeps_the_doubt_of_the_try_before() -> None:
    """Review R11: an event's request on a kept-alive connection closed before any byte of
    the answer is made again at once on a new connection. When that new try failed with no
    connection (refused, or its TLS handshake cut short), the records were reported as not
    applied: the new try's state had replaced the first's, which the server had read."""
    report, applied = _second_request_to_a_server_that_applies_it_and_vanishes(
        "track", [event(), event()]
    )
    assert len(applied) == 2  # the server read the second request
    assert report.status is DeliveryStatus.FAILED
    assert "NewConnectionError" in (report.reason or ""), report.reason  # the new try's
    assert report.maybe_applied
    assert (report.reason or "").endswith(MAYBE_APPLIED)


def test_a_profile_update_a_server_read_before_closing_is_not_made_again_at_once() -> None:
    """A close without an answer on a kept-alive connection is not told from a server that
    applied the request and went down. An event sent again is counted once; an $add would
    be applied twice, and under max_retries = 0 (the drop-in's retry_limit=0) it was, with
    the report ACCEPTED in one attempt (review R57 F1). It is left to the retry policy: here
    none, so FAILED, saying that Mixpanel may have applied it, and sent once."""
    report, applied = _second_request_to_a_server_that_applies_it_and_vanishes(
        "engage", [profile(n=9), profile(n=10)]
    )
    assert len(applied) == 2
    assert report.status is DeliveryStatus.FAILED
    assert report.attempts == 1
    assert "NewConnectionError" not in (report.reason or ""), "not made again"
    assert report.maybe_applied
    assert (report.reason or "").endswith(MAYBE_APPLIED)


def test_an_answer_cut_in_its_headers_may_have_been_applied(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """The server read the request whole and its answer ended with the connection in the
    middle of its headers: http.client takes that for a whole 200 with no body, a 2xx
    without Mixpanel's success answer, which says nothing of whether the records arrived
    (review R51 F2)."""
    server = scripted(answer(b"HTTP/1.1 200 OK\r\nContent-Le"))
    client = IngestionClient(
        MixpanelSettings(api_host=server.base_url, token=TOKEN), attrs.evolve(FAST, max_retries=0)
    )
    (report,) = client.send_batch("engage", [profile(n=5)], wait=RecordingWait()).reports
    assert report.status is DeliveryStatus.FAILED
    assert "HTTP 200 without Mixpanel's success answer" in (report.reason or "")
    assert report.maybe_applied
    assert (report.reason or "").endswith(MAYBE_APPLIED)
    assert len(server.requests) == 1
