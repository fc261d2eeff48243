"""``buffered_http``: what ``flush``/``close`` count as undelivered, and ``close`` racing producers.

Each test sends through the real transport to the emulator, over a socket.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import PeopleUpdate

from .test_buffered_http import make_event, transport_for, wait_for_stalled_request

pytestmark = pytest.mark.integration


def _profile(n: int) -> PeopleUpdate:
    record = {"$token": "emulator-token", "$distinct_id": f"u{n}", "$add": {"visits": 1}}
    return PeopleUpdate(freeze(record, "people"))


def test_close_gives_up_only_on_the_requests_of_a_take_not_yet_settled(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    """One take, two requests (/track, then /engage). /track is accepted and reported; the
    emulator then holds /engage. ``flush`` and ``close`` count only /engage as undelivered:
    the accepted event is neither returned, nor reported FAILED, nor dead-lettered (a replay
    would send it again). Nor is /engage sent once ``close`` has given up on it."""
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    accepted = threading.Event()

    def report(delivery: DeliveryReport) -> None:
        reports.append(delivery)
        if delivery.status is DeliveryStatus.ACCEPTED and not accepted.is_set():
            # On the sender thread, between the take's two requests: hold the next one.
            mixpanel_emulator.client.stall()
            accepted.set()

    transport = transport_for(
        mixpanel_emulator, linger=0.5, dead_letter_path=str(dead), read_timeout=30.0
    )
    transport.sender._settling.report = report
    event, profile = make_event("settled", 0), _profile(0)
    try:
        transport.send(event)
        transport.send(profile)  # in the same take (linger), to another endpoint
        assert accepted.wait(10)
        wait_for_stalled_request(mixpanel_emulator)  # /engage is held
        assert transport.flush(0.1) == [profile]
        left = transport.close(0.2)
    finally:
        mixpanel_emulator.client.release()
    assert left == [profile]
    statuses = [(r.status, r.message) for r in reports]
    assert statuses == [(DeliveryStatus.ACCEPTED, event), (DeliveryStatus.FAILED, profile)]
    lines = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert [line["endpoint"] for line in lines] == ["engage"]
    # The held request is answered after close gave up on it; the sender thread then ends.
    thread = transport.sender._thread
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()
    assert mixpanel_emulator.client.insert_ids("track") == [event.insert_id]
    assert len(reports) == 2  # the late answer reported nothing more


def test_close_does_not_start_the_next_request_of_a_take_it_gave_up_on(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    """One take, two requests; the emulator holds the first. ``close`` gives up on both
    (FAILED, dead-lettered, returned). When the held request is answered, the sender must
    not send the second one: it was dead-lettered, and a people update applied twice (once
    now, once when the dead letter is replayed) adds twice."""
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    transport = transport_for(
        mixpanel_emulator, reports, linger=0.5, dead_letter_path=str(dead), read_timeout=30.0
    )
    event, profile = make_event("abandoned", 0), _profile(1)
    mixpanel_emulator.client.stall()
    try:
        transport.send(event)
        transport.send(profile)
        wait_for_stalled_request(mixpanel_emulator)  # /track is held, /engage waits behind
        left = transport.close(0.2)
    finally:
        mixpanel_emulator.client.release()
    assert left == [event, profile]
    thread = transport.sender._thread
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()
    assert mixpanel_emulator.client.records("engage") == []
    assert sorted(r.status.value for r in reports) == ["failed", "failed"]
    lines = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert sorted(line["endpoint"] for line in lines) == ["engage", "track"]


def test_records_given_as_json_while_close_runs_are_each_accounted_for_once(
    mixpanel_emulator: Emulator,
) -> None:
    """``send_records`` waits for room under ``block`` after taking some of its records, and
    ``close`` starts. It must not raise ``TransportError`` (which says none was taken: the
    multiprocessing sender then reports every record FAILED, the taken ones a second time);
    the records it could not queue are reported DROPPED, the taken ones FAILED by close."""
    reports: list[DeliveryReport] = []
    transport = transport_for(
        mixpanel_emulator,
        reports,
        max_queue_messages=2,
        when_full="block",
        block_timeout=30.0,
        linger=0.0,
    )
    first = make_event("racing", 0)
    given = [make_event("racing", n) for n in range(1, 5)]
    outcome: list[BaseException | None] = []

    def produce() -> None:
        try:
            transport.send_records("track", [m.json() for m in given])
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    mixpanel_emulator.client.stall()
    try:
        transport.send(first)
        wait_for_stalled_request(mixpanel_emulator)  # ``first`` is in flight, held
        producer = threading.Thread(target=produce)
        producer.start()
        # Two of the four fit; the producer waits for room for the third (or is about to:
        # either way the queue refuses it once closed).
        deadline = time.monotonic() + 10
        while transport.sender._queue.total_put < 3:
            assert time.monotonic() < deadline, "the producer never queued its records"
            time.sleep(0.005)
        left = transport.close(0.3)
        producer.join(10)
        assert not producer.is_alive()
    finally:
        mixpanel_emulator.client.release()
    assert outcome == [None]
    assert left == [first, *given[:2]]
    by_message = {(r.message.insert_id if r.message else None): r.status for r in reports}
    assert len(reports) == len(by_message) == 5, "one report per record"
    assert by_message == {
        first.insert_id: DeliveryStatus.FAILED,
        given[0].insert_id: DeliveryStatus.FAILED,
        given[1].insert_id: DeliveryStatus.FAILED,
        given[2].insert_id: DeliveryStatus.DROPPED,
        given[3].insert_id: DeliveryStatus.DROPPED,
    }
    assert transport.dropped == 2


_DISK_FILLS_UP = """
import resource, signal, sys, time
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

base_url, dead = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
options = BufferedHttpOptions(linger=0.0, exit_timeout=0.0, dead_letter_path=dead)
transport = BufferedHttpTransport(MixpanelSettings(api_host=base_url), options)

def event(n):
    record = {"event": "e", "properties": {"token": "emulator-token", "distinct_id": "u",
        "time": time.time(), "$insert_id": f"full-{n:08d}", "note": "x" * 3000}}
    return Event(freeze(record, "event"))

_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (100, hard))  # the disk fills up mid-line
transport.send(event(0))
assert transport.flush(30) == []
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # room again
transport.send(event(1))
assert transport.flush(30) == []
transport.close(5)
"""


def test_a_dead_letter_written_after_a_write_cut_short_stays_a_line_of_its_own(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    """The disk fills up while a dead letter is written (simulated in a child process with
    RLIMIT_FSIZE): part of its line stays in the file. The next dead letter, written once
    there is room, must still be a JSON line of its own, not glued to that fragment."""
    dead = tmp_path / "dead.jsonl"
    mixpanel_emulator.client.fail_next(2, 400, endpoints=["track"])
    done = subprocess.run(
        [sys.executable, "-c", _DISK_FILLS_UP, mixpanel_emulator.base_url, str(dead)],
        timeout=60,
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "could not write 1 of 1 record(s)" in done.stderr  # the cut-short write was logged
    assert mixpanel_emulator.stats()["requests"]["track"] == {"400": 2}
    parsed = []
    for line in dead.read_bytes().splitlines():
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue  # the fragment the full disk left
    assert [entry["record"]["properties"]["$insert_id"] for entry in parsed] == ["full-00000001"]


@pytest.mark.parametrize("verb", ["close", "flush"])
def test_close_or_flush_from_a_delivery_hook_is_refused_and_loses_nothing(
    mixpanel_emulator: Emulator, verb: str
) -> None:
    """A ``mixpanel_delivered`` hook runs on the sender thread: ``close()`` or ``flush()``
    there would wait for that very thread. It is refused at once with an error saying why
    (the pipeline logs a hook's error and goes on), and every event is still delivered."""
    errors: list[Exception] = []
    first = threading.Event()
    transport = transport_for(mixpanel_emulator, linger=0.05)

    def report(delivery: DeliveryReport) -> None:
        if first.is_set():
            return
        first.set()
        try:  # what Pipeline.report does around each hook
            getattr(transport, verb)(5.0)
        except Exception as error:
            errors.append(error)

    transport.sender._settling.report = report
    events = [make_event(f"hook-{verb}", i) for i in range(50)]
    transport.send(events[0])
    assert first.wait(10)
    for event in events[1:]:
        transport.send(event)
    assert transport.close(10) == []
    assert [str(e) for e in errors] == [
        f"buffered: {verb}() was called from the sender's own thread (a delivery report "
        "hook?), which would wait for itself; call it from another thread"
    ]
    delivered = set(mixpanel_emulator.client.insert_ids("track"))
    assert delivered == {e.insert_id for e in events}


def test_dead_letters_the_file_could_not_take_are_counted_on_the_transport(
    mixpanel_emulator: Emulator,
) -> None:
    # Only an ERROR line said so before: nothing a monitor could read without parsing logs.
    reports: list[DeliveryReport] = []
    transport = transport_for(mixpanel_emulator, reports, dead_letter_path="/dev/full")
    mixpanel_emulator.client.fail_next(1, 400, endpoints=["track"])
    for n in range(3):
        transport.send(make_event("unwritten", n))
    transport.flush(10)

    assert [r.status for r in reports] == [DeliveryStatus.REJECTED] * 3
    assert transport.dead_letters_unwritten == 3
    transport.close(5)
