"""The multiprocessing_queue transport on its own: options, frames, policies, reports, lifecycle.

The sender here delivers to a ``memory`` transport (in the sender process); what happened is
seen through the reports that come back to the owner's ``mixpanel_delivered`` hook.
"""

from __future__ import annotations

import collections
import multiprocessing
import pickle
import threading
import time
from typing import Any

import pytest

from mixpanel_core import hookimpl
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
        ({"linger": 0}, "linger must be greater than 0"),
        ({"when_full": "panic"}, "transports.default.when_full: must be one of"),
        ({"colour": "red"}, "transports.default.colour: unknown key"),
    ],
)
def test_wrong_options_fail_naming_the_key(options: dict[str, Any], message: str) -> None:
    pipeline = Pipeline([], None, config(**options))
    with pytest.raises(ConfigError, match=message):
        pipeline.transport("default")


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


def test_the_configuration_crosses_to_the_sender_process_intact() -> None:
    cfg = config(fallback="sink")
    assert pickle.loads(pickle.dumps(cfg)) == cfg


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


def test_frames_behind_the_stop_request_are_delivered_when_a_worker_had_not_closed() -> None:
    # A worker still open when the owner stopped may queue frames after the stop request:
    # the sender then waits for a quiet queue instead of exiting at the request.
    client, reports, transport = client_for(config(start_sender=False))
    source, memory = memory_client()
    source.track("u1", "Before")
    source.track("u2", "After")
    first, second = memory.messages
    frames = transport.channel.frames
    frames.put(encode_frame([encode_line(first)]))
    frames.put(stop_request(still_open=1))
    frames.put(encode_frame([encode_line(second)]))
    sender: Any = multiprocessing.get_context("fork").Process(
        target=run_sender, args=(transport.channel,)
    )
    sender.start()
    sender.join(30)
    client.close(timeout=30)
    assert sender.exitcode == 0
    assert reports.by_status == {"accepted": 2}
    assert set(reports.insert_ids) == {first.insert_id, second.insert_id}


# -- the full-queue policies (no sender runs, so the queue of two batches fills) ------------

FULL = {"start_sender": False, "batch_size": 1, "max_queue_messages": 2}


def test_block_raises_queue_full_after_block_timeout() -> None:
    client, reports, _ = client_for(config(when_full="block", block_timeout=0.3, **FULL))
    client.track("u", "one")
    client.track("u", "two")
    started = time.monotonic()
    with pytest.raises(QueueFullError, match=r"stayed full for 0\.3s"):
        client.track("u", "three")
    assert time.monotonic() - started >= 0.3
    assert reports.by_status == {"failed": 1}
    client.close(timeout=0.3)


def test_drop_newest_drops_and_reports_what_did_not_fit() -> None:
    client, reports, transport = client_for(config(when_full="drop_newest", **FULL))
    for name in ("one", "two", "three", "four"):
        client.track("u", name)
    assert reports.by_status == {"dropped": 2}
    assert reports.event_names(DeliveryStatus.DROPPED) == ["three", "four"]
    kept = [decode_frame(transport.channel.frames.get(timeout=5)) for _ in range(2)]
    assert [m[0].name for m in kept] == ["one", "two"]
    client.close(timeout=0.3)


def test_drop_oldest_makes_room_by_dropping_the_batch_that_waited_longest() -> None:
    client, reports, transport = client_for(config(when_full="drop_oldest", **FULL))
    for name in ("one", "two", "three", "four"):
        client.track("u", name)
    assert reports.by_status == {"dropped": 2}
    assert reports.event_names(DeliveryStatus.DROPPED) == ["one", "two"]
    left = [decode_frame(transport.channel.frames.get(timeout=5)) for _ in range(2)]
    assert [m[0].name for m in left] == ["three", "four"]
    client.close(timeout=0.3)
