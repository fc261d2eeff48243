"""The ``buffered_http`` transport: enqueue, batch, retry, drop by policy, flush, fork, exit."""

from __future__ import annotations

import base64
import collections
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core import hookimpl
from mixpanel_core.bounded_queue import BoundedQueue
from mixpanel_core.client import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator, EmulatorProcess
from mixpanel_core.errors import QueueFullError, TransportError, ValidationError
from mixpanel_core.frozen import freeze
from mixpanel_core.ingestion import result
from mixpanel_core.messages import Event, ImportEvent, Message, PeopleUpdate
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

pytestmark = pytest.mark.integration

_FAST = {
    "backoff_base": 0.001,
    "backoff_cap": 0.002,
    "rate_limit_base": 0.001,
    "rate_limit_cap": 0.002,
    "linger": 0.01,
    "exit_timeout": 0.0,
}


def make_event(tag: str, n: int, cls: type[Event] = Event, **props: object) -> Event:
    record = {
        "event": "e",
        "properties": {
            "token": "emulator-token",
            "distinct_id": f"u{n}",
            "time": time.time() - 10,
            "$insert_id": f"{tag.replace('_', '-')}-{n:012d}",
            **props,
        },
    }
    return cls(freeze(record, cls.kind))


def transport_for(
    emulator: Emulator | EmulatorProcess,
    reports: list[DeliveryReport] | None = None,
    observed: bool = True,
    **options: object,
) -> BufferedHttpTransport:
    settings = MixpanelSettings(api_host=emulator.base_url, token="emulator-token")
    opts = BufferedHttpOptions(**{**_FAST, **options})  # type: ignore[arg-type]
    report = reports.append if reports is not None else (lambda r: None)
    return BufferedHttpTransport(settings, opts, name="buffered", report=report, observed=observed)


def wait_for_stalled_request(emulator: Emulator) -> None:
    """Until the sender's first request is held by the stalled emulator (bounded poll)."""
    deadline = time.monotonic() + 10
    while emulator.client.faults()["stalled_requests"] < 1:
        assert time.monotonic() < deadline, "the sender never reached the emulator"
        time.sleep(0.005)


def test_send_only_enqueues_and_flush_delivers_in_batches(mixpanel_emulator: Emulator) -> None:
    reports: list[DeliveryReport] = []
    transport = transport_for(mixpanel_emulator, reports, linger=0.5)
    messages = [make_event("batch", i) for i in range(5000)]
    for message in messages:
        transport.send(message)
    assert transport.flush(30) == []
    assert sorted(mixpanel_emulator.client.insert_ids("track")) == sorted(
        m.insert_id for m in messages
    )
    assert sum(mixpanel_emulator.client.stats()["requests"]["track"].values()) <= 5
    assert len(reports) == 5000
    assert {r.status for r in reports} == {DeliveryStatus.ACCEPTED}
    transport.close()


def test_a_batch_mixing_kinds_sends_each_to_its_endpoint_in_order(
    mixpanel_emulator: Emulator,
) -> None:
    reports: list[DeliveryReport] = []
    transport = transport_for(mixpanel_emulator, reports, linger=0.5)
    events = [make_event("mixed", i) for i in range(30)]
    people = [
        PeopleUpdate(
            freeze(
                {"$token": "emulator-token", "$distinct_id": f"u{i}", "$set": {"n": i}},
                "people",
            )
        )
        for i in range(30)
    ]
    for pair in zip(events, people, strict=True):
        for message in pair:
            transport.send(message)
    assert transport.flush(30) == []
    assert mixpanel_emulator.client.insert_ids("track") == [e.insert_id for e in events]
    profiles = mixpanel_emulator.client.records("engage")
    assert [p["$distinct_id"] for p in profiles] == [f"u{i}" for i in range(30)]
    assert sorted(id(r.message) for r in reports) == sorted(map(id, events + people))
    assert {r.status for r in reports} == {DeliveryStatus.ACCEPTED}
    transport.close()


def test_without_an_observer_only_undelivered_records_get_reports(
    mixpanel_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default ``ignore_report``, accepted records cost no report at all; the
    rejected ones still get theirs, in the dead-letter file, and flush settles everything."""
    built: list[DeliveryStatus] = []
    build = result.reports_for

    def counting(*args: Any) -> list[DeliveryReport]:
        reports = build(*args)
        built.extend(r.status for r in reports)
        return reports

    monkeypatch.setattr(result, "reports_for", counting)
    dead = tmp_path / "dead.jsonl"
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    options = {**_FAST, "max_batch_records": 5, "dead_letter_path": str(dead)}
    transport = BufferedHttpTransport(settings, BufferedHttpOptions(**options))  # type: ignore[arg-type]
    mixpanel_emulator.client.fail_next(1, 400, endpoints=["track"])
    messages = [make_event("quiet", i) for i in range(20)]
    for message in messages:
        transport.send(message)
    assert transport.flush(30) == []
    accepted = mixpanel_emulator.client.insert_ids("track")
    lines = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    rejected = [line["record"]["properties"]["$insert_id"] for line in lines]
    assert 1 <= len(rejected) <= 5
    assert {line["status"] for line in lines} == {"rejected"}
    assert sorted(accepted + rejected) == sorted(m.insert_id or "" for m in messages)
    assert built == [DeliveryStatus.REJECTED] * len(rejected)
    transport.close()


def test_unobserved_the_queue_holds_json_and_rebuilds_the_messages_it_returns(
    mixpanel_emulator: Emulator,
) -> None:
    """Nobody reads reports: a queued record is its JSON alone (nothing for the garbage
    collector to walk), except for /import, whose credentials may come with the call. What
    ``flush`` returns is rebuilt, equal to what was sent, and is still delivered later."""
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    transport = BufferedHttpTransport(settings, BufferedHttpOptions(**_FAST))  # type: ignore[arg-type]
    mixpanel_emulator.client.stall()
    first = make_event("held", 0)
    transport.send(first)
    wait_for_stalled_request(mixpanel_emulator)
    events = [make_event("held", i) for i in range(1, 6)]
    imported = make_event("held", 6, ImportEvent)
    for message in [*events, imported]:
        transport.send(message)
    queued = transport.sender._queue.snapshot()
    assert [(endpoint, kept) for endpoint, kept, _ in queued] == [
        *[("track", None)] * 5,
        ("import", imported),
    ]
    assert [data for _, _, data in queued] == [m.json() for m in [*events, imported]]
    assert transport.flush(0.2) == [first, *events, imported]
    mixpanel_emulator.client.release()
    assert transport.close(30) == []
    assert sorted(mixpanel_emulator.client.insert_ids("track")) == sorted(
        m.insert_id or "" for m in [first, *events]
    )


def test_records_given_as_json_are_sent_as_they_are(mixpanel_emulator: Emulator) -> None:
    reports: list[DeliveryReport] = []
    transport = transport_for(mixpanel_emulator, reports)
    messages = [make_event("as-is", i, plan="pro") for i in range(20)]
    transport.send_records("track", [m.json() for m in messages[:15]])
    transport.send_records("track", [m.json() for m in messages[15:]])
    with pytest.raises(ValidationError, match="endpoint: 'trak' is not one of"):
        transport.send_records("trak", [messages[0].json()])  # type: ignore[arg-type]
    assert transport.flush(30) == []
    arrived = mixpanel_emulator.client.records("track")
    assert [orjson.dumps(record) for record in arrived] == [m.json() for m in messages]
    # Reports carry the message rebuilt from the JSON, equal to the one encoded.
    assert [r.message for r in reports] == messages
    assert {r.status for r in reports} == {DeliveryStatus.ACCEPTED}
    transport.close()
    with pytest.raises(TransportError, match="closed"):
        transport.send_records("track", [messages[0].json()])


@pytest.mark.parametrize(
    ("when_full", "queued", "dropped"),
    [("drop_newest", [0, 1, 2], [3, 4, 5]), ("drop_oldest", [3, 4, 5], [0, 1, 2])],
)
def test_records_that_do_not_fit_obey_the_policy_one_by_one(
    when_full: str, queued: list[int], dropped: list[int]
) -> None:
    drops: list[int] = []
    queue: BoundedQueue[int] = BoundedQueue(
        3,
        10_000,
        when_full,
        0.0,
        lambda items, why: drops.extend(items),  # type: ignore[arg-type]
    )
    queue.put_many([0, 1], [10, 10])
    queue.put_many([2, 3, 4, 5], [10, 10, 10, 10])
    assert queue.snapshot() == queued
    assert drops == dropped
    assert queue.total_put == (6 if when_full == "drop_oldest" else 3)
    assert queue.total_dropped == 3
    assert queue.bytes == 30


def test_a_queue_that_stayed_full_says_first_that_mixpanel_may_be_failing() -> None:
    # During an outage the only lines were these refusals, whose advice (a larger queue)
    # cannot help: the sender's retries are logged only once they give up.
    queue: BoundedQueue[int] = BoundedQueue(1, 10_000, "block", 0.05, lambda items, why: None)
    queue.put(0, 10)
    with pytest.raises(QueueFullError) as refused:
        queue.put(1, 10)
    text = str(refused.value)
    assert text.startswith("dropped: the queue stayed full (1 messages, 10 bytes) for 0.05s; ")
    assert "if Mixpanel is failing or slow, the sender is retrying or waiting" in text
    assert text.index("failing or slow") < text.index("raise max_queue_messages")


def test_under_block_the_records_after_a_refused_one_are_refused_without_waiting() -> None:
    drops: list[tuple[list[int], str]] = []
    queue: BoundedQueue[int] = BoundedQueue(
        2, 10_000, "block", 1.0, lambda items, why: drops.append((items, why))
    )
    started = time.monotonic()
    queue.put_many(list(range(10)), [10] * 10)
    waited = time.monotonic() - started
    # One timeout (1 s) for the first refused record; one per refused record would be 8 s.
    assert 1.0 <= waited < 4.0
    assert queue.snapshot() == [0, 1]
    assert [items for items, _ in drops] == [[2], list(range(3, 10))]
    assert "stayed full" in drops[0][1]
    assert "earlier record of its batch" in drops[1][1]
    assert queue.total_dropped == 8


def test_a_reporter_that_does_not_observe_hears_of_every_record_not_delivered(
    mixpanel_emulator: Emulator,
) -> None:
    """``observed=False`` with a real reporter (the multiprocessing sender's relay): no
    report for accepted records, one for each record rejected, with its message."""
    reports: list[DeliveryReport] = []
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    options = BufferedHttpOptions(**{**_FAST, "max_batch_records": 5})  # type: ignore[arg-type]
    transport = BufferedHttpTransport(settings, options, report=reports.append, observed=False)
    mixpanel_emulator.client.fail_next(1, 400, endpoints=["track"])
    messages = [make_event("unobserved", i) for i in range(20)]
    for message in messages:
        transport.send(message)
    assert transport.flush(30) == []
    accepted = set(mixpanel_emulator.client.insert_ids("track"))
    assert 15 <= len(accepted) < 20
    assert {r.status for r in reports} == {DeliveryStatus.REJECTED}
    assert [r.message for r in reports] == [m for m in messages if m.insert_id not in accepted]
    transport.close()


def test_the_queue_hands_items_over_in_order_and_keeps_its_byte_count() -> None:
    queue: BoundedQueue[int] = BoundedQueue(100, 10_000, "block", 0.0, lambda items, why: None)
    for n in range(10):
        queue.put(n, 10 + n)
    assert queue.take(3) == [0, 1, 2]  # part of the queue
    assert (len(queue), queue.bytes) == (7, sum(10 + n for n in range(3, 10)))
    assert queue.snapshot() == [3, 4, 5, 6, 7, 8, 9]
    assert queue.take(100) == [3, 4, 5, 6, 7, 8, 9]  # all of it
    assert (len(queue), queue.bytes) == (0, 0)
    queue.put(10, 5)
    assert (queue.take(1), queue.bytes, queue.total_put) == ([10], 0, 11)


def test_drop_oldest_evicts_just_enough_bytes_and_refuses_what_can_never_fit() -> None:
    dropped: list[tuple[str, str]] = []
    queue: BoundedQueue[str] = BoundedQueue(
        10, 100, "drop_oldest", 0.0, lambda items, why: dropped.extend((i, why) for i in items)
    )
    for name, size in [("a", 40), ("b", 40), ("c", 10)]:
        queue.put(name, size)
    queue.put("d", 50)  # 90 held: only "a" has to go
    assert (queue.snapshot(), queue.bytes) == (["b", "c", "d"], 100)
    queue.put("e", 101)  # bigger than the whole bound
    assert [name for name, _ in dropped] == ["a", "e"]
    assert (queue.total_evicted, queue.total_dropped, queue.total_put) == (1, 2, 4)
    assert queue.snapshot() == ["b", "c", "d"]


def test_bursts_of_429_and_500_lose_nothing_and_duplicate_nothing(
    mixpanel_emulator: Emulator,
) -> None:
    mixpanel_emulator.client.fail_fraction(0.6, (429, 500, 503), seed=11)
    transport = transport_for(mixpanel_emulator, max_batch_records=50)
    messages = [make_event("burst", i) for i in range(2000)]
    for message in messages:
        transport.send(message)
    assert transport.close(60) == []
    received = mixpanel_emulator.client.insert_ids("track")
    assert len(received) == len(set(received)) == 2000
    assert "429" in mixpanel_emulator.client.stats()["requests"]["track"]


def test_sixteen_threads_sending_at_once_lose_nothing(mixpanel_emulator: Emulator) -> None:
    # A generous block_timeout: a sender stalled for a moment on this busy box must make
    # producers wait, not raise QueueFullError.
    transport = transport_for(mixpanel_emulator, max_queue_messages=1000, block_timeout=30.0)
    errors: list[BaseException] = []

    def produce(thread: int) -> None:
        try:
            for i in range(500):
                transport.send(make_event(f"t{thread:02d}", i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert transport.close(60) == []
    received = mixpanel_emulator.client.insert_ids("track")
    assert len(received) == len(set(received)) == 16 * 500
    assert transport.dropped == 0


_BLOCK_TIMEOUT = 0.1


def _fill_while_stalled(
    emulator: Emulator, when_full: str, reports: list[DeliveryReport], observed: bool = True
) -> tuple[BufferedHttpTransport, list[Message], dict[int, float]]:
    """One message in flight (held by the stalled emulator), then 7 more into a queue of 5.

    Also returns the sends that raised QueueFullError: their index, and how long each took.
    """
    transport = transport_for(
        emulator,
        reports,
        observed,
        when_full=when_full,
        max_queue_messages=5,
        max_batch_records=1,
        linger=0.0,
        block_timeout=_BLOCK_TIMEOUT,
    )
    emulator.client.stall()
    messages = [make_event(when_full, i) for i in range(8)]
    transport.send(messages[0])
    wait_for_stalled_request(emulator)
    refused: dict[int, float] = {}
    for index, message in enumerate(messages[1:], start=1):
        started = time.monotonic()
        try:
            transport.send(message)
        except QueueFullError:
            refused[index] = time.monotonic() - started
    return transport, messages, refused


@pytest.mark.parametrize("observed", [True, False])
@pytest.mark.parametrize(
    ("when_full", "dropped", "delivered"),
    [
        ("drop_newest", [6, 7], [0, 1, 2, 3, 4, 5]),
        ("drop_oldest", [1, 2], [0, 3, 4, 5, 6, 7]),
        ("block", [6, 7], [0, 1, 2, 3, 4, 5]),
    ],
)
def test_a_full_queue_obeys_its_policy_and_reports_every_drop(
    mixpanel_emulator: Emulator,
    when_full: str,
    dropped: list[int],
    delivered: list[int],
    observed: bool,
) -> None:
    """Observed or not (the queue then holds JSON alone), every drop is reported with its
    message; accepted records are reported only when observed."""
    reports: list[DeliveryReport] = []
    transport, messages, refused = _fill_while_stalled(
        mixpanel_emulator, when_full, reports, observed
    )
    if when_full == "block":
        # Exactly the refused sends raised, each after waiting out block_timeout for room.
        assert sorted(refused) == dropped
        assert all(waited >= _BLOCK_TIMEOUT for waited in refused.values()), refused
    else:
        assert refused == {}
    assert transport.dropped == 2
    drops = [r for r in reports if r.status is DeliveryStatus.DROPPED]
    assert [r.message for r in drops] == [messages[i] for i in dropped]
    assert all("full" in (r.reason or "") for r in drops)
    mixpanel_emulator.client.release()
    assert transport.close(30) == []
    assert sorted(mixpanel_emulator.client.insert_ids("track")) == sorted(
        messages[i].insert_id for i in delivered
    )
    accepted = [r for r in reports if r.status is DeliveryStatus.ACCEPTED]
    assert len(accepted) == (len(delivered) if observed else 0)


def test_block_waits_for_room_when_the_queue_drains(mixpanel_emulator: Emulator) -> None:
    transport = transport_for(
        mixpanel_emulator, max_queue_messages=1, max_batch_records=1, linger=0.0, block_timeout=30
    )
    mixpanel_emulator.client.stall()
    transport.send(make_event("room", 0))
    wait_for_stalled_request(mixpanel_emulator)
    transport.send(make_event("room", 1))  # fills the queue
    blocked = threading.Thread(target=transport.send, args=(make_event("room", 2),))
    blocked.start()
    mixpanel_emulator.client.release()
    blocked.join(30)
    assert not blocked.is_alive()
    assert transport.close(30) == []
    assert len(mixpanel_emulator.client.insert_ids("track")) == 3


def test_flush_returns_what_is_not_delivered_in_time_and_keeps_it(
    mixpanel_emulator: Emulator,
) -> None:
    transport = transport_for(mixpanel_emulator)
    mixpanel_emulator.client.stall()
    messages = [make_event("late", i) for i in range(10)]
    for message in messages:
        transport.send(message)
    assert sorted(m.insert_id or "" for m in transport.flush(0.2)) == sorted(
        m.insert_id or "" for m in messages
    )
    mixpanel_emulator.client.release()
    assert transport.flush(30) == []
    assert len(mixpanel_emulator.client.insert_ids("track")) == 10


def test_close_gives_up_within_its_bound_and_dead_letters_the_rest(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    transport = transport_for(
        mixpanel_emulator, reports, dead_letter_path=str(dead), read_timeout=30.0
    )
    mixpanel_emulator.client.stall()
    for i in range(3):
        transport.send(make_event("closing", i))
    started = time.monotonic()
    left = transport.close(0.3)
    # Bounded by its 0.3 s, not by the 30 s read timeout of the stalled request.
    assert time.monotonic() - started < 5.0
    assert len(left) == 3
    assert [r.status for r in reports] == [DeliveryStatus.FAILED] * 3
    lines = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert [line["record"]["properties"]["$insert_id"] for line in lines] == [
        f"closing-{i:012d}" for i in range(3)
    ]
    assert all("close()" in line["reason"] for line in lines)
    with pytest.raises(TransportError, match="closed"):
        transport.send(make_event("closing", 9))
    assert transport.close() == []
    mixpanel_emulator.client.release()


def test_records_failed_after_the_budget_go_to_the_dead_letter_file(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    dead = tmp_path / "nested" / "dead.jsonl"
    reports: list[DeliveryReport] = []
    transport = transport_for(
        mixpanel_emulator, reports, dead_letter_path=str(dead), retry_budget=0.0
    )
    mixpanel_emulator.client.fail_next(1, 503)
    good = make_event("dl", 1)
    transport.send(good)
    assert transport.flush(30) == []
    transport.close(30)
    (line,) = [orjson.loads(x) for x in dead.read_bytes().splitlines()]
    assert line["endpoint"] == "track"
    assert line["status"] == "failed"
    assert "503" in line["reason"]
    assert line["record"]["properties"]["$insert_id"] == good.insert_id
    assert reports[0].status is DeliveryStatus.FAILED


def test_a_forked_child_delivers_its_own_events_and_not_the_parents(tmp_path: Path) -> None:
    """Forked while the parent has one request in flight and four records queued: the child
    sends only its own, and the parent still delivers all of its own, each exactly once."""
    with EmulatorProcess() as emulator:
        transport = transport_for(emulator)
        emulator.client.stall()
        parents = [make_event("parent", i) for i in range(5)]
        transport.send(parents[0])
        wait_for_stalled_request(emulator)  # parent-0 is in flight, held
        for message in parents[1:]:
            transport.send(message)  # queued behind it
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                for i in range(20):
                    transport.send(make_event("child", i))
                code = 0 if transport.flush(30) == [] else 2
            finally:
                os._exit(code)
        emulator.client.release()
        parents.append(make_event("parent", 5))
        transport.send(parents[-1])
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert transport.close(30) == []
        received = collections.Counter(emulator.client.insert_ids("track"))
        expected = [m.insert_id for m in parents] + [f"child-{i:012d}" for i in range(20)]
        assert received == collections.Counter(expected), "each sent once, by its own process"


def test_batches_share_one_keep_alive_connection(mixpanel_emulator: Emulator) -> None:
    transport = transport_for(mixpanel_emulator, max_batch_records=5)
    for i in range(100):
        transport.send(make_event("reuse", i))
    assert transport.flush(30) == []
    stats = mixpanel_emulator.stats()  # in-process: opens no connection of its own
    assert stats["accepted"]["track"] == 100
    assert stats["requests"]["track"] == {"200": 20}
    assert stats["connections"] == 1
    transport.close()


class Reports:
    """A ``mixpanel_delivered`` plugin keeping every report (called from the sender thread)."""

    def __init__(self) -> None:
        self.seen: list[DeliveryReport] = []
        self._lock = threading.Lock()

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        with self._lock:
            self.seen.append(report)

    def insert_ids(self, status: DeliveryStatus) -> list[str | None]:
        return [r.message.insert_id if r.message else None for r in self.seen if r.status is status]


def importing_client(emulator: Emulator, reports: Reports, dead: Path, **mixpanel: str) -> Mixpanel:
    """A client whose /import events go through buffered_http with the service account.

    Only ``reports`` is plugged in: without mixpanel_limits, records it would refuse before
    sending reach the emulator, which is then the one to judge them.
    """
    config = config_from_mapping(
        {
            "mixpanel": {
                "token": "emulator-token",
                "api_host": emulator.base_url,
                "service_account_username": "sa-user",
                "service_account_secret": "sa-secret",
                "project_id": "12345",
                **mixpanel,
            },
            "transports": {
                "default": {
                    "type": "buffered_http",
                    **_FAST,
                    "linger": 0.5,  # every record below goes in one request
                    "max_batch_records": 100,
                    "dead_letter_path": str(dead),
                }
            },
        }
    )
    return Mixpanel("emulator-token", pipeline=Pipeline([("reports", reports)], None, config))


def dead_letters(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_strict_400_rejects_and_dead_letters_exactly_the_records_mixpanel_named(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    reports, dead = Reports(), tmp_path / "dead.jsonl"
    client = importing_client(mixpanel_emulator, reports, dead)
    before_1971, placeholder = "strict-2", "strict-5"
    for n in range(8):
        insert_id = f"strict-{n}"
        client.import_data(
            None,
            "undefined" if insert_id == placeholder else f"user-{n}",
            "Backfilled",
            1_000 if insert_id == before_1971 else 1_700_000_000 + n,
            {"$insert_id": insert_id},
        )
    assert client.flush(30) == []

    # One strict request, answered 400 naming two records by index; the others kept.
    assert mixpanel_emulator.stats()["requests"]["import"] == {"400": 1}
    good = [f"strict-{n}" for n in range(8) if n not in (2, 5)]
    assert sorted(mixpanel_emulator.insert_ids("import")) == good
    assert sorted(reports.insert_ids(DeliveryStatus.ACCEPTED)) == good
    rejected = {
        r.message.insert_id: r.field
        for r in reports.seen
        if r.status is DeliveryStatus.REJECTED and r.message
    }
    assert rejected == {before_1971: "properties.time", placeholder: "properties.distinct_id"}
    assert reports.insert_ids(DeliveryStatus.FAILED) == []
    lines = dead_letters(dead)
    assert sorted(line["record"]["properties"]["$insert_id"] for line in lines) == [
        before_1971,
        placeholder,
    ]
    assert {(line["status"], line["http_status"]) for line in lines} == {("rejected", 400)}
    client.close(30)


def test_refused_credentials_fail_and_dead_letter_every_record_without_leaking_the_secret(
    mixpanel_emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "not-the-secret-xyz"
    reports, dead = Reports(), tmp_path / "dead.jsonl"
    client = importing_client(mixpanel_emulator, reports, dead, service_account_secret=secret)
    sent = [f"refused-{n}" for n in range(6)]
    with caplog.at_level(logging.WARNING):
        for n, insert_id in enumerate(sent):
            client.import_data(
                None, f"user-{n}", "Backfilled", 1_700_000_000 + n, {"$insert_id": insert_id}
            )
        assert client.flush(30) == []

    assert set(mixpanel_emulator.stats()["requests"]["import"]) == {"401"}
    assert mixpanel_emulator.stats()["accepted"]["import"] == 0
    assert sorted(reports.insert_ids(DeliveryStatus.FAILED)) == sent
    assert len(reports.seen) == len(sent), "one report each, all FAILED"
    written = dead.read_text()
    assert sorted(line["record"]["properties"]["$insert_id"] for line in dead_letters(dead)) == sent
    assert "Mixpanel refused the service account 'sa-user'" in caplog.text
    # Neither the secret nor the Authorization header made of it is logged or dead-lettered.
    header = base64.b64encode(f"sa-user:{secret}".encode()).decode()
    for text in (caplog.text, written):
        assert secret not in text
        assert header not in text
    client.close(30)


def _run_exiting_program(base_url: str, exit_timeout: float, dead: Path) -> tuple[int, float]:
    """Run a program that queues 100 events and just ends; its exit code and seconds taken."""
    program = textwrap.dedent(
        f"""
        import time
        from mixpanel_core.frozen import freeze
        from mixpanel_core.messages import Event
        from mixpanel_core.settings import MixpanelSettings
        from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

        settings = MixpanelSettings(api_host={base_url!r})
        options = BufferedHttpOptions(
            linger=600.0, exit_timeout={exit_timeout}, read_timeout=60.0,
            dead_letter_path={str(dead)!r},
        )
        transport = BufferedHttpTransport(settings, options)
        for i in range(100):
            record = {{"event": "e", "properties": {{"token": "emulator-token",
                "distinct_id": "u", "time": time.time(), "$insert_id": f"exit-{{i:08d}}"}}}}
            transport.send(Event(freeze(record, "event")))
        # no flush, no close: the interpreter's exit must deliver them
        """
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", program], timeout=90, check=False)
    return done.returncode, time.monotonic() - started


def test_interpreter_exit_flushes_what_is_queued(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    code, _ = _run_exiting_program(mixpanel_emulator.base_url, 10.0, tmp_path / "dead.jsonl")
    assert code == 0
    assert len(set(mixpanel_emulator.client.insert_ids("track"))) == 100


def test_interpreter_exit_is_bounded_when_mixpanel_does_not_answer(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    """With the emulator stalled, exit still happens (bounded) and nothing vanishes."""
    dead = tmp_path / "dead.jsonl"
    mixpanel_emulator.client.stall()
    code, seconds = _run_exiting_program(mixpanel_emulator.base_url, 0.5, dead)
    assert code == 0
    # About a second (start-up, then the 0.5 s exit_timeout); waiting for the stalled
    # request's 60 s read timeout would take far longer than this bound.
    assert seconds < 15.0
    assert len(dead.read_bytes().splitlines()) == 100
    mixpanel_emulator.client.release()
