"""The multiprocessing_queue transport on its own: options, frames, policies, reports, lifecycle.

The sender here delivers to a ``memory`` transport (in the sender process); what happened is
seen through the reports that come back to the owner's ``mixpanel_delivered`` hook.
"""

from __future__ import annotations

import collections
import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs
import pytest

from mixpanel_core import hookimpl, process_exit
from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config, config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import ConfigError, QueueFullError
from mixpanel_core.messages import Event
from mixpanel_core.multiprocess import run_sender, worker_client
from mixpanel_core.multiprocess.channel import stop_request
from mixpanel_core.multiprocess.frames import (
    decode_frame,
    encode_frame,
    encode_line,
    records_by_endpoint,
)
from mixpanel_core.multiprocess.intake import Intake
from mixpanel_core.multiprocess.pipe import (
    END,
    HEADER,
    PAYLOAD,
    START,
    ChunkWriter,
    FrameAssembler,
    Written,
)
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import memory_client


class Reports:
    def __init__(self) -> None:
        self.by_status: collections.Counter[str] = collections.Counter()
        self.insert_ids: list[str | None] = []
        self.seen: list[DeliveryReport] = []
        self._lock = threading.Lock()

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        with self._lock:
            self.by_status[report.status.value] += 1
            self.insert_ids.append(report.message.insert_id if report.message else None)
            self.seen.append(report)

    def event_names(self, status: DeliveryStatus) -> list[str]:
        """The event name of each report with ``status``, in the order reported."""
        return [
            r.message.name for r in self.seen if r.status is status and isinstance(r.message, Event)
        ]


def config(**workers: Any) -> Config:
    options = {"type": "multiprocessing_queue", "inner": "sink", "start_method": "fork"}
    return config_from_mapping(
        {
            "mixpanel": {"token": "t"},
            "transports": {"default": {**options, **workers}, "sink": {"type": "memory"}},
        }
    )


def client_for(cfg: Config) -> tuple[Mixpanel, Reports, Any]:
    reports = Reports()
    client = Mixpanel("t", config=cfg, pipeline=Pipeline([("reports", reports)], None, cfg))
    return client, reports, client.pipeline.transport("default")


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"inner": "nowhere"}, "transports.default.inner: no transport named 'nowhere'"),
        ({"inner": "default"}, "transports.default.inner: cannot be this transport itself"),
        ({"fallback": "nowhere"}, "transports.default.fallback: no transport named 'nowhere'"),
        ({"linger": 0}, "linger: must be greater than 0"),
        ({"when_full": "panic"}, "transports.default.when_full: must be one of"),
        ({"colour": "red"}, "transports.default.colour: unknown key"),
    ],
)
def test_wrong_options_fail_naming_the_key(options: dict[str, Any], message: str) -> None:
    pipeline = Pipeline([], None, config(**options))
    with pytest.raises(ConfigError, match=message):
        pipeline.transport("default")


@pytest.mark.parametrize(
    ("inners", "loop"),
    [
        ({"default": "other", "other": "default"}, "default -> other -> default"),
        ({"default": "a", "a": "b", "b": "a"}, "default -> a -> b -> a"),
    ],
    ids=["each-others", "further-on"],
)
def test_an_inner_chain_that_loops_is_refused_when_built(inners: dict[str, str], loop: str) -> None:
    """Each queue transport is built in the sender process of the one before it, so no
    process saw the loop: the application started sender processes without end."""
    queue = {"type": "multiprocessing_queue", "start_method": "fork"}
    cfg = config_from_mapping(
        {
            "mixpanel": {"token": "t"},
            "transports": {name: {**queue, "inner": inner} for name, inner in inners.items()},
        }
    )
    pipeline = Pipeline([], None, cfg)
    with pytest.raises(ConfigError) as refused:
        pipeline.transport("default")
    assert str(refused.value) == (
        f"transports.default.inner: leads into a loop of multiprocessing_queue transports "
        f"({loop}): each would start a sender process that starts the next, without end"
    )


def test_frames_carry_the_wire_records_and_rebuild_the_same_messages() -> None:
    client, memory = memory_client()
    client.track("u1", "Signed up", {"plan": "pro", "tags": ["a", "b"], "text": "line\nbreak"})
    client.people_set("u1", {"name": "Ada"})
    client.group_set("company", "acme", {"size": 3})
    frame = encode_frame([encode_line(m) for m in memory.messages])
    assert isinstance(frame, bytes)
    assert decode_frame(frame) == memory.messages


def test_a_frame_splits_into_runs_of_one_endpoint_in_order() -> None:
    client, memory = memory_client()
    client.track("u1", "One")
    client.track("u1", "Two")
    client.people_set("u1", {"name": "Ada"})
    client.track("u1", "Three")
    frame = encode_frame([encode_line(m) for m in memory.messages])
    runs = records_by_endpoint(frame)
    assert [(endpoint, len(records)) for endpoint, records in runs] == [
        ("track", 2),
        ("engage", 1),
        ("track", 1),
    ]
    assert [r for _, records in runs for r in records] == [m.json() for m in memory.messages]
    # The usual frame, one endpoint throughout, is cut by a single split.
    only_events = encode_frame([encode_line(m) for m in memory.messages[:2]])
    assert records_by_endpoint(only_events) == [("track", [m.json() for m in memory.messages[:2]])]


def chunks(pid: int, frame: bytes, records: int) -> list[bytes]:
    """``frame`` as the chunks a producer with ``pid`` writes."""
    parts = [frame[i : i + PAYLOAD] for i in range(0, len(frame), PAYLOAD)]
    flags = [START if i == 0 else 0 for i in range(len(parts))]
    flags[-1] |= END
    return [HEADER.pack(pid, 1, f, records, len(p)) + p for f, p in zip(flags, parts, strict=True)]


def test_interleaved_chunks_of_two_producers_make_their_frames_whole_again() -> None:
    one, two = b"a" * (3 * PAYLOAD + 5), b"b" * (2 * PAYLOAD)
    a, b = chunks(100, one, 7), chunks(200, two, 3)
    stream = b"".join([a[0], b[0], a[1], b[1], a[2], a[3]])
    assembler = FrameAssembler()
    # Fed in pieces that cut chunks anywhere, as reads of a pipe may.
    items = [
        item for i in range(0, len(stream), 1000) for item in assembler.feed(stream[i : i + 1000])
    ]
    assert items == [two, one]
    assert assembler.cuts == []


def test_an_unfinished_frame_is_discarded_and_counted_never_delivered_in_part() -> None:
    assembler = FrameAssembler()
    first = chunks(100, b"x" * (2 * PAYLOAD), 40)
    assert assembler.feed(first[0]) == []
    # The same producer starts another frame: it gave up on the first.
    assert assembler.feed(b"".join(chunks(100, b"next", 1))) == [b"next"]
    assert assembler.cuts == [(100, 40)]
    assembler.cuts.clear()
    # The rest of the abandoned frame, had it come, is not taken for anything.
    assert assembler.feed(first[1]) == []
    # A producer that died half way is discarded when asked.
    assembler.feed(chunks(300, b"y" * (2 * PAYLOAD), 12)[0])
    assert assembler.pending_pids() == {300}
    assembler.discard({300})
    assert assembler.cuts == [(300, 12)]
    assert assembler.pending_pids() == set()


def sender_config() -> Config:
    """Everything the sender may need: credentials (secrets), plugin options, a fallback."""
    return config_from_mapping(
        {
            "mixpanel": {
                "token": "t",
                "api_secret": "api-secret-value",
                "service_account_username": "sa-user",
                "service_account_secret": "sa-secret-value",
                "project_id": "12345",
            },
            "plugins": {
                "enabled": ["super_properties"],
                "super_properties": {"properties": {"app": "shop", "n": [1, 2.5, None]}},
            },
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "sink",
                    "fallback": "sink",
                    "start_sender": False,
                    "batch_size": 7,
                },
                "sink": {"type": "memory"},
            },
        }
    )


def identical(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (a table that came back as another kind
    of mapping compares equal, but no longer behaves, or prints, the same)."""
    if type(a) is not type(b):
        return False
    if attrs.has(type(a)):
        return all(identical(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(type(a)))
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(identical, a, b))
    return bool(a == b)


def run_sender_telling_its_configuration(channel: Any, seen: Any) -> None:
    """A spawned sender that first says whether the configuration it got through the channel
    is the one built from the same table here, in its own process, then runs as usual."""
    received, expected = channel.spec.config, sender_config()
    secrets = received.mixpanel.api_secret, received.mixpanel.service_account_secret
    seen.put((received == expected, identical(received, expected), [s.reveal() for s in secrets]))
    run_sender(channel)


def test_the_configuration_crosses_to_the_sender_process_intact() -> None:
    client, reports, transport = client_for(sender_config())
    seen: Any = multiprocessing.get_context("spawn").Queue()
    sender: Any = multiprocessing.get_context("spawn").Process(
        target=run_sender_telling_its_configuration, args=(transport.channel, seen)
    )
    sender.start()
    client.track("u1", "Tick")
    client.close(timeout=60)
    sender.join(10)
    equal, same_types, secrets = seen.get(timeout=10)
    assert sender.exitcode == 0
    assert reports.by_status == {"accepted": 1}
    # The secrets crossed as values (a Secret that pickled to a placeholder would differ).
    assert secrets == ["api-secret-value", "sa-secret-value"]
    assert equal, "the sender's configuration differs from the owner's"
    assert same_types, "a part of the sender's configuration came back as another type"


# -- delivery and reports -----------------------------------------------------------------


def test_reports_from_the_sender_reach_the_owners_hook_with_their_messages() -> None:
    client, reports, transport = client_for(config(batch_size=7))
    client.track("parent", "Tick")
    for i in range(100):
        client.track(f"u{i}", "Tick", {"i": i})
    client.close()
    assert reports.by_status == {"accepted": 101}
    assert None not in reports.insert_ids
    assert len(set(reports.insert_ids)) == 101
    assert transport.supervisor.counts == {"accepted": 101}
    assert not transport.supervisor.process.is_alive()


def test_flush_returns_once_the_sender_has_delivered_what_was_sent() -> None:
    client, reports, _ = client_for(config(linger=60.0))
    for i in range(10):
        client.track(f"u{i}", "Tick")
    client.flush(timeout=30)
    assert reports.by_status == {"accepted": 10}
    client.close()


def test_a_sender_started_by_hand_delivers_and_stops_like_the_packaged_one() -> None:
    client, reports, transport = client_for(config(start_sender=False))
    sender: Any = multiprocessing.get_context("spawn").Process(
        target=run_sender, args=(transport.channel,)
    )
    sender.start()
    for i in range(50):
        client.track(f"u{i}", "Tick")
    client.close(timeout=60)
    sender.join(10)
    assert sender.exitcode == 0
    assert reports.by_status == {"accepted": 50}


def test_worker_client_in_the_owning_process_is_refused_and_the_owner_carries_on() -> None:
    client, reports, transport = client_for(config())
    with pytest.raises(ConfigError, match="worker_client\\(\\) is for worker processes"):
        worker_client(transport.channel)
    client.track("u1", "Tick")
    client.close(timeout=30)
    assert reports.by_status == {"accepted": 1}


def write_items(channel: Any, *items: bytes | tuple[Any, ...]) -> None:
    """Write frames and control items to the channel's pipe as a producer would."""
    writer = ChunkWriter(channel.pipe, check_interval=0.2)
    deadline = time.monotonic() + 5
    for item in items:
        if isinstance(item, bytes):
            assert writer.write(item, 1, deadline, deadline, lambda: True) is Written.ALL
        else:
            assert writer.write_control(item, deadline, lambda: True)


def event_name(frame: bytes) -> str:
    """The name of the event in a frame of one."""
    (event,) = decode_frame(frame)
    assert isinstance(event, Event)
    return event.name


def read_frames(channel: Any) -> list[bytes]:
    """Every whole frame in the channel's pipe now (no sender runs)."""
    assembler = FrameAssembler()
    frames: list[bytes] = []
    while True:
        try:
            data = os.read(channel.pipe.reader.fd, 1 << 16)
        except BlockingIOError:
            return frames
        frames += [item for item in assembler.feed(data) if isinstance(item, bytes)]


def test_frames_behind_the_stop_request_are_delivered_when_a_worker_had_not_closed() -> None:
    # A worker still open when the owner stopped may queue frames after the stop request:
    # the sender then waits for a quiet queue instead of exiting at the request.
    client, reports, transport = client_for(config(start_sender=False))
    source, memory = memory_client()
    source.track("u1", "Before")
    source.track("u2", "After")
    first, second = memory.messages
    write_items(
        transport.channel,
        encode_frame([encode_line(first)]),
        stop_request(still_open=1),
        encode_frame([encode_line(second)]),
    )
    sender: Any = multiprocessing.get_context("fork").Process(
        target=run_sender, args=(transport.channel,)
    )
    sender.start()
    sender.join(30)
    client.close(timeout=30)
    assert sender.exitcode == 0
    assert reports.by_status == {"accepted": 2}
    assert set(reports.insert_ids) == {first.insert_id, second.insert_id}


# -- the full-queue policies ------------------------------------------------------------------
# No sender runs: the pipe fills (block, drop_newest), or a backlog of two batches is read
# from it in the test (drop_oldest, which the sender applies to its backlog).

FULL = {"start_sender": False, "batch_size": 1, "max_queue_messages": 2}
PAD = "x" * 3000
"""Each message (one frame) takes a page of the pipe, so it fills in a few hundred."""


def track_until_refused(client: Mixpanel) -> tuple[float, QueueFullError]:
    """Track until the pipe is full: how long the refused call took, and its error."""
    for i in range(100_000):
        started = time.monotonic()
        try:
            client.track("u", "Fill", {"i": i, "pad": PAD})
        except QueueFullError as exc:
            return time.monotonic() - started, exc
    pytest.fail("the pipe never filled")


def test_block_raises_queue_full_after_block_timeout() -> None:
    client, reports, _ = client_for(config(when_full="block", block_timeout=0.3, **FULL))
    took, error = track_until_refused(client)
    assert "stayed full for 0.3s" in str(error)
    assert took >= 0.3
    assert reports.by_status == {"failed": 1}
    client.close(timeout=0.3)


def test_drop_newest_drops_and_reports_what_did_not_fit() -> None:
    client, reports, transport = client_for(config(when_full="drop_newest", **FULL))
    sent = 2_000
    for i in range(sent):
        client.track("u", str(i), {"pad": PAD})
    kept = [event_name(frame) for frame in read_frames(transport.channel)]
    dropped = reports.event_names(DeliveryStatus.DROPPED)
    assert kept
    assert dropped
    # The oldest are in the pipe, in order; every later one was dropped and reported.
    assert kept + dropped == [str(i) for i in range(sent)]
    assert reports.by_status == {"dropped": len(dropped)}
    client.close(timeout=0.3)


def test_drop_oldest_makes_room_by_dropping_the_batch_that_waited_longest() -> None:
    client, reports, transport = client_for(config(when_full="drop_oldest", **FULL))
    for name in ("one", "two", "three", "four"):
        client.track("u", name)
    dropped: list[bytes] = []
    # What the sender does: read the pipe into a backlog of two batches, dropping the oldest.
    intake = Intake(transport.channel, dropped.append, lambda pid, records: None)
    deadline = time.monotonic() + 10
    while len(dropped) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    left = [intake.get(timeout=5) for _ in range(2)]
    intake.stop()
    assert [event_name(frame) for frame in dropped] == ["one", "two"]
    assert [event_name(frame) for frame in left if isinstance(frame, bytes)] == ["three", "four"]
    assert reports.by_status == {}  # reported by the sender, which reports to the owner
    client.close(timeout=0.3)


def test_a_closed_transport_leaves_no_exit_close_behind() -> None:
    """Each closed transport kept its exit close, with its closure and a slot of the exit's
    registry, until the process ended (review L1: 21 -> 108 hooks over 87 transports)."""

    def exit_closes() -> int:
        gc.collect()
        return sum(isinstance(o, process_exit._ExitHook) for o in gc.get_objects())

    def one_built_used_and_closed() -> None:
        client, _, _ = client_for(config())
        client.track("u1", "Signed up")
        assert client.close(timeout=10) == []

    one_built_used_and_closed()  # what the first client registers once per process
    before = exit_closes()
    for _ in range(3):
        one_built_used_and_closed()
    assert exit_closes() == before
