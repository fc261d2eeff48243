"""``buffered_http``: ``close`` and ``flush`` count as undelivered only what is not settled.

``close`` returns, reports FAILED and dead-letters what it gave up on, never a record Mixpanel
accepted (a caller or a replay resending it would apply a profile ``$add`` twice); ``flush``
waits for every record sent before it, whatever the full policy drops after. Each test sends
through the real transport over a socket: to the emulator, or to a scripted server where one
answer must follow another.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core import buffering
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.frozen import freeze
from mixpanel_core.ingestion.classify import Classification
from mixpanel_core.ingestion.result import BatchResult
from mixpanel_core.messages import Message, PeopleUpdate
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

from ..ingestion.scripted import ScriptedServer, answer, raw
from .test_buffered_http import make_event, transport_for, wait_for_stalled_request

pytestmark = pytest.mark.integration

ACCEPTED, FAILED = DeliveryStatus.ACCEPTED, DeliveryStatus.FAILED


def _profile(n: int) -> PeopleUpdate:
    record = {"$token": "emulator-token", "$distinct_id": f"user-{n}", "$add": {"logins": 1}}
    return PeopleUpdate(freeze(record, "people"))


def _user(message: Message | None) -> str:
    assert message is not None
    return str(message.record["$distinct_id"])


def _dead_letters(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def _join_sender(transport: BufferedHttpTransport) -> None:
    """Until the sender thread ended: whatever it still reports is in then."""
    thread = transport.sender._thread
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()


_SPLIT_FIRST_HALF_ACCEPTED = [
    answer(raw("413 Payload Too Large", b'{"error": "request too large"}')),
    answer(raw("200 OK", b'{"status": 1, "error": null}')),
]
"""The scripted answers of a batch split on 413 whose first half Mixpanel accepts."""


def _one_take(
    server: ScriptedServer,
    records: int,
    dead: Path,
    report: Callable[[DeliveryReport], None],
    backoff_base: float = 0.5,
) -> BufferedHttpTransport:
    """A transport to ``server`` that lingers until ``records`` are queued: one take, one
    request. ``backoff_base=10``: a retry wait that outlasts close's timeout."""
    options = BufferedHttpOptions(
        linger=10.0,
        max_batch_records=records,
        backoff_base=backoff_base,
        retry_budget=60.0,
        exit_timeout=0.0,
        dead_letter_path=str(dead),
    )
    settings = MixpanelSettings(api_host=server.base_url, token="emulator-token")
    return BufferedHttpTransport(settings, options, report=report)


class _AnsweredWhenCloseGivesUp(threading.Event):
    """Stands in for the sender's abort event. When ``close`` sets it (its flush ran out of time
    with a request held by the emulator), the request is let through, and ``close`` goes on
    only once the sender reported its answer: Mixpanel answering in close's join window."""

    def __init__(self, emulator: Emulator, answered: threading.Event) -> None:
        super().__init__()
        self._emulator = emulator
        self._answered = answered

    def set(self) -> None:
        super().set()
        self._emulator.client.release()
        assert self._answered.wait(10), "the held request was never answered"


@pytest.mark.parametrize("slow_way_out", [False, True], ids=["at once", "slow way out"])
def test_close_cutting_a_retry_short_keeps_the_accepted_half_of_a_split_batch(
    tmp_path: Path, slow_way_out: bool
) -> None:
    """Eight profile updates in one request: 413, the first half accepted, the second half 503
    and waiting to be retried when ``close`` runs out of time. The first half stays ACCEPTED
    (not returned, not dead-lettered); only the second is FAILED, dead-lettered, returned, and
    not sent again. Also when the thread's way out of the cut wait takes longer than close's
    usual 50 ms for a thread to end (a loaded machine): close waits for it to settle that
    call, so the second half is reported as the thread settled it (its retry cut short)."""
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    updates = [_profile(n) for n in range(8)]
    with ScriptedServer(
        [*_SPLIT_FIRST_HALF_ACCEPTED, answer(raw("503 Service Unavailable", b'{"error": "busy"}'))]
    ) as server:
        transport = _one_take(server, 8, dead, reports.append, backoff_base=10.0)
        if slow_way_out:
            send_encoded = transport.sender.client.send_encoded

            def slowly(*args: Any, **kwargs: Any) -> BatchResult:
                result = send_encoded(*args, **kwargs)
                time.sleep(0.5)  # after the cut wait, before the thread settles the call
                return result

            transport.sender.client.send_encoded = slowly  # type: ignore[method-assign]
        for update in updates:
            transport.send(update)
        deadline = time.monotonic() + 10
        while len(server.requests) < 3:  # the 503 of the second half is on its way
            assert time.monotonic() < deadline, "the sender never retried the second half"
            time.sleep(0.005)
        left = transport.close(1.0)
        _join_sender(transport)
        assert len(server.requests) == 3, "the second half was sent again after close"
    assert left == updates[4:]
    assert [(r.message, r.status) for r in reports] == [(u, ACCEPTED) for u in updates[:4]] + [
        (u, FAILED) for u in updates[4:]
    ]
    assert all("cut short" in (r.reason or "") for r in reports[4:])
    lines = _dead_letters(dead)
    assert [line["record"]["$distinct_id"] for line in lines] == [  # type: ignore[index]
        f"user-{n}" for n in range(4, 8)
    ]


def _held(released: threading.Event) -> Callable[[socket.socket], None]:
    """An answer the scripted server writes only once ``released`` (200, accepted)."""

    def write(sock: socket.socket) -> None:
        assert released.wait(10), "the held request was never released"
        answer(raw("200 OK", b'{"status": 1, "error": null}'))(sock)

    return write


@pytest.mark.parametrize("sent_twice", [False, True], ids=["distinct", "one sent twice"])
def test_close_giving_up_during_the_second_half_of_a_split_keeps_the_accepted_first_half(
    tmp_path: Path, sent_twice: bool
) -> None:
    """Eight profile updates in one request: 413, the first half accepted, the second half's
    request held when ``close(0.5)`` runs out of time. ``close`` gives up on the second half
    only (FAILED, dead-lettered, returned); the first half, which Mixpanel applied, stays
    ACCEPTED: not returned, not dead-lettered (a replay would apply its $add twice). Each
    record is reported once, the first half by the thread when its request ends. Also when
    one update was sent twice, once in each half (both copies share their JSON)."""
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    updates = [_profile(n) for n in range(8)]
    if sent_twice:
        updates[4] = updates[0]
    released = threading.Event()
    with ScriptedServer([*_SPLIT_FIRST_HALF_ACCEPTED, _held(released)]) as server:
        transport = _one_take(server, 8, dead, reports.append)
        try:
            for update in updates:
                transport.send(update)
            deadline = time.monotonic() + 10
            while len(server.requests) < 3:  # the second half's request is held
                assert time.monotonic() < deadline, "the sender never sent the second half"
                time.sleep(0.005)
            left = transport.close(0.5)  # returns while the second half's request is out
        finally:
            released.set()
        _join_sender(transport)
    assert left == updates[4:]
    told = sorted((_user(r.message), r.status.name) for r in reports)
    wanted = [(_user(u), "ACCEPTED") for u in updates[:4]]
    assert told == sorted(wanted + [(_user(u), "FAILED") for u in updates[4:]])
    lines = _dead_letters(dead)
    assert (
        [line["record"]["$distinct_id"] for line in lines]
        == [  # type: ignore[index]
            _user(u) for u in updates[4:]
        ]
    )


def test_an_unexpected_error_in_the_second_half_of_a_split_keeps_the_accepted_first_half(
    tmp_path: Path,
) -> None:
    """413, the first half accepted, then a bug raises while the second half is sent: the
    sender reports the second half FAILED with the error, and the first half ACCEPTED, as
    Mixpanel answered it (not dead-lettered: a replay would apply its $add twice)."""
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    updates = [_profile(n) for n in range(8)]
    with ScriptedServer(_SPLIT_FIRST_HALF_ACCEPTED) as server:
        transport = _one_take(server, 8, dead, reports.append)
        # Each attempt goes through the client's poster (``ingestion.posting``).
        poster = transport.sender.client._poster
        post = poster.post
        posted: list[int] = []

        def post_then_fail(*args: Any, **kwargs: Any) -> Classification:
            posted.append(1)
            if len(posted) == 3:
                raise ValueError("a bug")
            return post(*args, **kwargs)

        poster.post = post_then_fail  # type: ignore[method-assign]
        for update in updates:
            transport.send(update)
        assert transport.close(10) == []
    assert [(r.message, r.status) for r in reports] == [(u, ACCEPTED) for u in updates[:4]] + [
        (u, FAILED) for u in updates[4:]
    ]
    assert all(r.reason == "ValueError: a bug" for r in reports[4:])
    assert len(_dead_letters(dead)) == 4


def test_close_stopping_a_retry_wait_does_not_wait_for_the_reports_of_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten profile updates, 503, their retry wait cut short by ``close(0.5)``. ``close`` waits
    for the thread to settle that call, not for its reports: here the report callback is held
    until ``close`` returned (and its grace made longer than that hold, so a ``close`` that
    waited for the reports would be seen). The ten are FAILED once each, returned and
    dead-lettered."""
    monkeypatch.setattr(buffering, "_SETTLING_GRACE", 30.0)
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    closed = threading.Event()
    held_until_closed: list[bool] = []

    def report(delivery: DeliveryReport) -> None:
        if not held_until_closed:  # the first report: a slow report callback
            held_until_closed.append(closed.wait(5))
        reports.append(delivery)

    updates = [_profile(n) for n in range(10)]
    with ScriptedServer([answer(raw("503 Service Unavailable", b'{"error": "busy"}'))]) as server:
        transport = _one_take(server, 10, dead, report, backoff_base=10.0)
        waiting = threading.Event()
        wait = transport.sender._loop._wait

        def wait_to_retry(seconds: float) -> bool:
            waiting.set()
            return wait(seconds)

        transport.sender._loop._wait = wait_to_retry  # type: ignore[method-assign]
        for update in updates:
            transport.send(update)
        assert waiting.wait(10), "the sender never waited to retry"
        left = transport.close(0.5)
        closed.set()
        _join_sender(transport)
    assert held_until_closed == [True], "close waited for the thread's report callback"
    assert left == updates
    assert [(r.message, r.status) for r in reports] == [(u, FAILED) for u in updates]
    assert all("cut short" in (r.reason or "") for r in reports)
    assert len(_dead_letters(dead)) == 10


def _answered_when_close_gives_up(
    emulator: Emulator,
    dead: Path,
    reports: list[DeliveryReport],
    answered_once: Callable[[], bool],
    max_batch_records: int,
) -> BufferedHttpTransport:
    """A transport whose held request is answered when ``close`` gives up, and whose ``close``
    goes on once ``answered_once()`` is true of the reports (see the class above)."""
    answered = threading.Event()

    def report(delivery: DeliveryReport) -> None:
        reports.append(delivery)
        if answered_once():
            answered.set()

    transport = transport_for(
        emulator,
        dead_letter_path=str(dead),
        read_timeout=30.0,
        linger=10.0,  # until the batch is queued: one take
        max_batch_records=max_batch_records,
    )
    transport.sender._settling.report = report
    transport.sender._loop.abort = _AnsweredWhenCloseGivesUp(emulator, answered)
    return transport


def test_close_returns_none_of_the_records_answered_while_it_waits_for_the_thread(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    """``close``'s flush runs out of time while the request is held; Mixpanel answers it 200
    after that, before the thread is given up on. Those records are ACCEPTED: ``close``
    returns none of them, and none is dead-lettered."""
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    # linger until all three are queued: one take, one request
    transport = _answered_when_close_gives_up(
        mixpanel_emulator, dead, reports, lambda: len(reports) == 3, max_batch_records=3
    )
    updates = [_profile(n) for n in range(3)]
    mixpanel_emulator.client.stall()
    try:
        for update in updates:
            transport.send(update)
        wait_for_stalled_request(mixpanel_emulator)
        left = transport.close(0.2)
    finally:
        mixpanel_emulator.client.release()
    _join_sender(transport)
    assert left == []
    assert [(r.message, r.status) for r in reports] == [(u, ACCEPTED) for u in updates]
    assert _dead_letters(dead) == []
    assert len(mixpanel_emulator.client.records("engage")) == 3


def test_close_returns_the_request_of_a_take_it_stopped_but_not_the_one_answered(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    """One take, two requests (/track, then /engage); /track is held when ``close`` runs out of
    time, and answered 200 right after. The sender does not start /engage: it reports it
    FAILED, and ``close`` returns exactly that profile update, not the accepted event."""
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    # linger until both are queued: one take, two requests
    transport = _answered_when_close_gives_up(
        mixpanel_emulator,
        dead,
        reports,
        lambda: reports[-1].status is ACCEPTED,
        max_batch_records=2,
    )
    event, update = make_event("answered-late", 0), _profile(0)
    mixpanel_emulator.client.stall()
    try:
        transport.send(event)
        transport.send(update)  # to another endpoint
        wait_for_stalled_request(mixpanel_emulator)
        left = transport.close(0.2)
    finally:
        mixpanel_emulator.client.release()
    _join_sender(transport)
    assert left == [update]
    assert [(r.message, r.status) for r in reports] == [(event, ACCEPTED), (update, FAILED)]
    assert [line["endpoint"] for line in _dead_letters(dead)] == ["engage"]
    assert mixpanel_emulator.client.insert_ids("track") == [event.insert_id]
    assert mixpanel_emulator.client.records("engage") == []


def test_flush_under_drop_oldest_waits_for_records_in_flight_despite_later_evictions(
    mixpanel_emulator: Emulator,
) -> None:
    """Five events in flight (held), ten queued (a full queue); ``flush`` starts, and fifteen
    more events evict fifteen. Evictions of records sent after ``flush`` started must not
    count: it returns only once the five in flight are settled, and then returns nothing."""
    reports: list[DeliveryReport] = []
    transport = transport_for(
        mixpanel_emulator,
        reports,
        when_full="drop_oldest",
        max_queue_messages=10,
        max_batch_records=5,
        linger=10.0,  # until five are queued: the first take is exactly those five
    )
    in_flight = [make_event("in-flight", n) for n in range(5)]
    flushed: list[tuple[Sequence[Message], list[DeliveryReport]]] = []

    def flush() -> None:
        left = transport.flush(30)
        flushed.append((left, list(reports)))  # what was reported when flush returned

    flusher = threading.Thread(target=flush)
    mixpanel_emulator.client.stall()
    try:
        for message in in_flight:
            transport.send(message)
        wait_for_stalled_request(mixpanel_emulator)
        for n in range(10):
            transport.send(make_event("queued", n))
        flusher.start()
        deadline = time.monotonic() + 10
        while transport.sender._loop.urgent < 1:  # flush has counted what was sent before it
            assert time.monotonic() < deadline, "flush never started"
            time.sleep(0.005)
        for n in range(15):
            transport.send(make_event("evicting", n))
        assert transport.dropped == 15
        flusher.join(0.5)
        assert flusher.is_alive(), "flush returned while records sent before it were held"
    finally:
        mixpanel_emulator.client.release()
    flusher.join(30)
    assert not flusher.is_alive()
    ((left, told),) = flushed
    assert left == []
    settled = [r.message for r in told if r.status is ACCEPTED]
    assert all(message in settled for message in in_flight)
    assert transport.close(30) == []
