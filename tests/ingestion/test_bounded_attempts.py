"""Every attempt ends within a bounded total time, and each request has a retry budget of its
own; over real sockets (a scripted server that trickles or delays its answers).

urllib3's timeouts bound each read, not a request: a server trickling its answer a byte at a
time held one request for ever, past ``read_timeout``, ``retry_budget`` and a fixed
deadline. A retry started within the budget ran to its full ``read_timeout`` past it. And the
requests of one call shared the call's budget, so a later request of a long call got no retry.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.ingestion.result import BatchResult
from mixpanel_core.settings import MixpanelSettings

from .conftest import TOKEN, RecordingWait, event
from .scripted import Answer, ScriptedServer, answer, raw

pytestmark = pytest.mark.integration

TRACK_OK = b'{"status": 1, "error": null}'
OK = answer(raw("200 OK", TRACK_OK))
BUSY = answer(raw("503 Service Unavailable", b'{"error": "busy"}'))

TRICKLE_GAP = 0.25
"""Seconds between two bytes of a trickled answer: each read is well within its timeout."""


def trickle(
    body: bytes = TRACK_OK + b" " * 60, head: str = "HTTP/1.1 200 OK\r\nContent-Length: {length}"
) -> Answer:
    """Sends the status line and headers at once, then the body one byte each TRICKLE_GAP."""

    def write(sock: socket.socket) -> None:
        sock.sendall((head.format(length=len(body)) + "\r\n\r\n").encode())
        for byte in body:
            time.sleep(TRICKLE_GAP)
            sock.sendall(bytes([byte]))

    return write


def after(seconds: float, then: Answer = OK) -> Answer:
    """Answers ``then`` after ``seconds``: a slow but healthy server."""

    def write(sock: socket.socket) -> None:
        time.sleep(seconds)
        then(sock)

    return write


def client_for(server: ScriptedServer, **options: Any) -> IngestionClient:
    values: dict[str, Any] = {
        "backoff_base": 0.001,
        "backoff_cap": 0.002,
        "rate_limit_base": 0.001,
        "rate_limit_cap": 0.002,
        **options,
    }
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    return IngestionClient(settings, HttpOptions(**values))


def sent_to(emulator: Emulator, batch: list[Any], **options: Any) -> BatchResult:
    """``batch`` sent to ``emulator`` as /track by a client with ``options``, then closed."""
    settings = MixpanelSettings(api_host=emulator.base_url, token=TOKEN)
    client = IngestionClient(settings, HttpOptions(**options))
    try:
        return client.send_batch("track", batch)
    finally:
        client.close()


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# -- a total bound on each attempt ----------------------------------------------------------


def test_a_trickled_answer_is_cut_off_at_the_ceiling_and_is_a_timeout(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """The trickle would take 15 s, each byte 0.25 s after the last (read_timeout 0.5): the
    attempt ends at connect_timeout + 2 x read_timeout, and is retried as a timeout."""
    server = scripted(trickle(), OK)
    client = client_for(server, connect_timeout=0.5, read_timeout=0.5, retry_budget=30)

    result, took = timed(lambda: client.send_batch("track", [event()], wait=RecordingWait()))

    ceiling = 0.5 + 2 * 0.5  # connect_timeout + 2 x read_timeout
    assert took < ceiling + 1.0, f"took {took:.1f}s: the trickle was not cut off"
    (report,) = result.reports
    assert (report.status, report.attempts) == (DeliveryStatus.ACCEPTED, 2), "retried"
    assert len(server.requests) == 2


def test_a_trickled_answer_without_retries_is_failed_as_a_timeout(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(trickle())
    client = client_for(server, connect_timeout=0.5, read_timeout=0.5, max_retries=0)

    result, took = timed(lambda: client.send_batch("track", [event()]))

    assert took < 0.5 + 2 * 0.5 + 1.0
    (report,) = result.reports
    assert report.status is DeliveryStatus.FAILED
    assert (
        "timed out: no complete answer 1.5s after the request was started (the connection "
        "was shut down)" in (report.reason or "")
    )


@pytest.mark.parametrize(
    "head",
    [
        "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {length}",
        "HTTP/1.0 200 OK\r\nContent-Length: {length}",
        "HTTP/1.1 200 OK\r\nConnection: close",  # the body ends with the connection
    ],
    ids=["connection-close", "http-1.0", "no-length"],
)
def test_a_trickled_answer_that_closes_its_connection_is_cut_off_too(
    scripted: Callable[..., ScriptedServer], head: str
) -> None:
    """An answer that will close its connection takes the socket out of the connection
    (http.client hands it to the answer): the watchdog must still find it (22 s of trickle
    held the attempt to the end)."""
    server = scripted(trickle(head=head))
    client = client_for(server, connect_timeout=0.5, read_timeout=0.5, max_retries=0)

    result, took = timed(lambda: client.send_batch("track", [event()]))

    assert took < 0.5 + 2 * 0.5 + 1.0, f"took {took:.1f}s: the trickle was not cut off"
    (report,) = result.reports
    assert report.status is DeliveryStatus.FAILED
    assert "timed out" in (report.reason or "")


def test_a_fixed_deadline_cuts_a_trickled_answer_off(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(trickle())
    client = client_for(server, connect_timeout=5, read_timeout=5)

    result, took = timed(
        lambda: client.send_batch("track", [event()], deadline=time.monotonic() + 1.0)
    )

    assert took < 1.8, f"took {took:.1f}s past a deadline 1 s away"
    (report,) = result.reports
    assert report.status is DeliveryStatus.FAILED
    assert "timed out" in (report.reason or "")


def test_one_watchdog_thread_per_client_not_one_per_request(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """The hot path starts no thread per request: one watchdog serves the client's requests,
    and it ends when the client is closed."""

    def ours() -> set[threading.Thread]:
        # Threads of earlier tests' clients may still be ending: only new ones are counted.
        return {t for t in threading.enumerate() if t.name.startswith("mixpanel-core")}

    before = ours()
    server = scripted(OK)
    client = client_for(server)
    for _ in range(20):
        assert client.send_batch("track", [event()]).ok
    [watchdog] = ours() - before
    assert watchdog.name == "mixpanel-core-request-watchdog"
    client.close()
    watchdog.join(2)
    assert not watchdog.is_alive()


def test_a_request_ended_by_a_base_exception_leaves_no_watch_behind(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """A KeyboardInterrupt while the answer was awaited left its watch behind: the watchdog
    woke 20 times a second for ever to shut a socket nobody used, and never ended."""
    server = scripted(after(5.0))
    client = client_for(server)
    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            client.send_batch("track", [event()])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    watchdog = client._http._watchdog
    assert watchdog._watches == set()
    client.close()
    thread = watchdog._thread
    if thread is not None:
        thread.join(2)
        assert not thread.is_alive()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# -- retries within the budget ----------------------------------------------------------------


def test_a_retry_ends_within_what_is_left_of_the_budget(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """A 503, then an answer 5 s away (read_timeout 10): the retry is cut off when the 2 s
    budget runs out, not 10 s later."""
    server = scripted(BUSY, after(5.0))
    client = client_for(server, read_timeout=10, retry_budget=2.0)

    result, took = timed(lambda: client.send_batch("track", [event()]))

    assert took < 2.8, f"took {took:.1f}s with a retry budget of 2 s"
    (report,) = result.reports
    assert (report.status, report.attempts) == (DeliveryStatus.FAILED, 2)
    assert (report.reason or "").startswith("gave up after 2 attempt(s) within the retry budget")
    assert "timed out" in (report.reason or "")


def test_no_retry_starts_when_nothing_is_left_of_the_budget(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """The wait before the retry used the whole budget: the retry is not made."""
    server = scripted(BUSY, OK)
    client = client_for(server, retry_budget=0.2)

    def wait(seconds: float) -> None:
        time.sleep(0.3)  # longer than asked: the budget is gone when the wait ends

    result = client.send_batch("track", [event()], wait=wait)

    (report,) = result.reports
    assert (report.status, report.attempts) == (DeliveryStatus.FAILED, 1)
    assert "within the retry budget: HTTP 503: busy" in (report.reason or "")
    assert len(server.requests) == 1


def test_each_request_of_a_call_has_a_budget_of_its_own(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Four requests (one record each), three answered after 0.8 s, the fourth a 503 then
    accepted: its retry is made, although the call is older than the 2 s budget."""
    slow = after(0.8)
    server = scripted(slow, slow, slow, BUSY, OK)
    client = client_for(server, retry_budget=2.0, max_batch_records=1)

    result = client.send_batch("track", [event() for _ in range(4)])

    assert [(r.status, r.attempts) for r in result.reports] == [
        (DeliveryStatus.ACCEPTED, 1),
        (DeliveryStatus.ACCEPTED, 1),
        (DeliveryStatus.ACCEPTED, 1),
        (DeliveryStatus.ACCEPTED, 2),
    ]
    assert len(server.requests) == 5


def test_no_retry_is_sent_with_less_left_of_the_budget_than_an_answer_needs(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """A 503 asking to wait 0.9 s, with a 1 s budget: the retry went out with 0.1 s left, was
    cut off while Mixpanel applied it, and was reported FAILED (a profile $add sent again
    later is applied twice). It is not sent: FAILED after the one attempt."""
    wait = answer(raw("503 Service Unavailable", b'{"error": "busy"}', "Retry-After: 0.9"))
    server = scripted(wait, after(0.3))
    client = client_for(server, retry_budget=1.0)

    result, took = timed(lambda: client.send_batch("track", [event()]))

    (report,) = result.reports
    assert (report.status, report.attempts) == (DeliveryStatus.FAILED, 1)
    assert len(server.requests) == 1
    assert took < 0.5, "it waited for a retry it would not send"


def test_a_server_refusing_every_record_as_too_large_costs_a_request_a_record() -> None:
    """A server whose body limit is below one record answers 413 to every request, single
    records too: a body of several records as large as one it refused is not sent again, so
    64 records cost about 64 requests, not 127 (13 s at 0.1 s each); each record is rejected
    on the server's own answer to it."""
    with Emulator(max_body_bytes=100) as emulator:
        emulator.set_latency(0.1)
        result = sent_to(emulator, [event() for _ in range(64)], retry_budget=1.0)
        requests = emulator.stats()["requests"]["track"]["413"]

    assert requests <= 64 + 7, requests
    assert [o.status for o in result.outcomes for _ in o.items] == [DeliveryStatus.REJECTED] * 64
    assert all(o.http_status == 413 and o.attempts >= 1 for o in result.outcomes)
    assert not [o for o in result.outcomes if "not sent" in (o.reason or "")]


@pytest.mark.parametrize("gzip", [False, True])
def test_a_413_not_about_this_body_loses_nothing(gzip: bool) -> None:
    """One 413 (a proxy's, a fault) on the call's first request, of two small records, says
    nothing of the larger records in its later requests: each is sent and delivered. With
    gzip on, a body that compresses well says nothing of records that compress worse."""
    with Emulator() as emulator:
        emulator.client.fail_next(1, 413, endpoints=["track"])
        small = [event(pad="a" * 100) for _ in range(2)]  # compresses well
        larger = [event(pad="".join(uuid.uuid4().hex for _ in range(12))) for _ in range(6)]
        result = sent_to(emulator, small + larger, retry_budget=0, gzip=gzip, max_batch_records=2)
        stored = len(emulator.records("track"))

    assert result.ok, [o.reason for o in result.outcomes]
    assert stored == 8


def test_a_stray_413_splits_only_its_own_request() -> None:
    """A 413 on the first of 8 requests of 50 records splits that one; the 7 after it are sent
    whole (what it taught was kept for the whole call: 999 requests for 1,000 records after a
    few stray 413s)."""
    with Emulator() as emulator:
        emulator.client.fail_next(1, 413, endpoints=["track"])
        result = sent_to(emulator, [event() for _ in range(400)], max_batch_records=50)
        requests = sum(emulator.stats()["requests"]["track"].values())

    assert result.ok, [o.reason for o in result.outcomes]
    assert requests == 1 + 2 + 7, requests


@pytest.mark.parametrize("oversized_first", [True, False])
def test_records_that_fit_are_delivered_beside_records_too_large(oversized_first: bool) -> None:
    """Only what is as large as a refused body is refused unsent: the records that fit the
    server's limit are delivered, in whatever order the batch holds them."""
    large = [event(pad="x" * 1000) for _ in range(25)]
    small = [event() for _ in range(25)]
    batch = large + small if oversized_first else small + large
    with Emulator(max_body_bytes=700) as emulator:
        result = sent_to(emulator, batch, retry_budget=0)
        stored = sorted(r["properties"]["$insert_id"] for r in emulator.records("track"))

    assert stored == sorted(m.insert_id for m in small)
    by_status = {
        o.status: sum(len(x.items) for x in result.outcomes if x.status is o.status)
        for o in result.outcomes
    }
    assert by_status == {DeliveryStatus.ACCEPTED: 25, DeliveryStatus.REJECTED: 25}


@pytest.mark.parametrize("options", [{"retry_budget": 0}, {"max_retries": 0}])
def test_the_halves_of_a_413_are_sent_without_retries_too(options: dict[str, Any]) -> None:
    """Halves are smaller requests, not the same one again: with no retries allowed, a batch
    too large for a server is still delivered, in halves."""
    with Emulator(max_body_bytes=700) as emulator:
        result = sent_to(emulator, [event() for _ in range(8)], **options)
        stored = len(emulator.records("track"))

    assert result.ok, [o.reason for o in result.outcomes]
    assert stored == 8


def test_a_413_while_narrowing_a_status_0_down_stays_within_the_budget(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """``status: 0`` for 8 events, then a 413 for the first half being sent again: the
    quarters that 413 splits off are still halves of the ``status: 0``, held to its retry
    budget (1 s; each answer takes 0.4 s). They were sent as requests of their own, up to
    2.4 s after the first."""
    status_0 = answer(raw("200 OK", b'{"status": 0, "error": "some events are invalid"}'))
    too_large = answer(raw("413 Payload Too Large", b'{"error": "request too large"}'))
    server = scripted(after(0.4, status_0), after(0.4, too_large), *[after(0.4)] * 6)
    client = client_for(server, retry_budget=1.0)

    result, took = timed(lambda: client.send_batch("track", [event() for _ in range(8)]))

    assert took < 1.0 + 0.4 + 0.5, f"took {took:.1f}s against a budget of 1 s"
    assert len(result.reports) == 8
    assert {r.status for r in result.reports} <= {DeliveryStatus.ACCEPTED, DeliveryStatus.REJECTED}
