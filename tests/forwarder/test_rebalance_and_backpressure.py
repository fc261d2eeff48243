"""The forwarder against the real broker and the emulator: a member joining mid-stream loses
nothing and commits nothing it has not delivered; a Mixpanel outage does not grow its memory.

The forwarders run in this process, on threads, so the test can watch every commit they make
and the records they hold, which a subprocess would hide.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from mixpanel_core.client import Mixpanel
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.emulator import Emulator
from mixpanel_core.forwarder.config import ForwarderConfig
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, HttpOptions, IngestionClient, Wait
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.fixtures import read_records
from mixpanel_core.messages import Endpoint, Message
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST_GROUP, FAST_RETRIES, ForwardingRig, wait_until

pytestmark = pytest.mark.integration

Position = tuple[int, int]
"""``(partition, offset)`` of a record in the rig's topic."""


class CommitWatch:
    """What the watched consumers hand out and commit, with what Mixpanel had accepted then."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._lock = threading.Lock()
        self.commits: list[tuple[dict[int, int], frozenset[str]]] = []
        self.handed_out: dict[int, int] = {}
        """The highest offset any watched consumer's ``poll()`` returned, by partition."""

    def polled(self, batches: Mapping[Any, Sequence[Any]]) -> None:
        with self._lock:
            for partition, records in batches.items():
                if records:
                    top = max(self.handed_out.get(partition.partition, -1), records[-1].offset)
                    self.handed_out[partition.partition] = top

    def committing(self, offsets: Mapping[Any, Any]) -> None:
        # Taken before the commit: a record accepted only afterwards was committed too early.
        accepted = frozenset(self._emulator.insert_ids("track"))
        with self._lock:
            self.commits.append(({tp.partition: m.offset for tp, m in offsets.items()}, accepted))

    def past_undelivered(self, ids: Mapping[Position, str]) -> list[str]:
        """Each commit that passed a record Mixpanel had not accepted, in words."""
        with self._lock:
            commits = list(self.commits)
        wrong = []
        for offsets, accepted in commits:
            for partition, committed in offsets.items():
                missing = sorted(
                    offset
                    for (number, offset), insert_id in ids.items()
                    if number == partition and offset < committed and insert_id not in accepted
                )
                if missing:
                    wrong.append(
                        f"partition {partition} committed at {committed} with {len(missing)} "
                        f"records below it undelivered (first: offset {missing[0]})"
                    )
        return wrong


class WatchedConsumer:
    """A ``KafkaConsumer`` whose ``poll`` and ``commit`` are reported to a ``CommitWatch``."""

    def __init__(self, consumer: Any, watch: CommitWatch) -> None:
        self._consumer = consumer
        self._watch = watch

    def poll(self, timeout_ms: int) -> Any:
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        self._watch.polled(batches)
        return batches

    def commit(self, offsets: Mapping[Any, Any], timeout_ms: int | None = None) -> None:
        self._watch.committing(offsets)
        self._consumer.commit(offsets, timeout_ms=timeout_ms)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


class Running:
    """A forwarder on its own thread; ``stop`` does what SIGTERM does and re-raises its error."""

    def __init__(self, forwarder: Forwarder, client: IngestionClient) -> None:
        self.forwarder = forwarder
        self._client = client
        self._error: BaseException | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.forwarder.run()
        except BaseException as exc:  # handed to the test thread by stop()
            self._error = exc

    @property
    def held(self) -> int:
        """Records read from Kafka and neither delivered nor set aside: what is in memory."""
        metrics = self.forwarder.metrics
        settled = metrics.delivered + metrics.rejected + metrics.poison
        return metrics.consumed - settled

    def stop(self, timeout: float = 60.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.forwarder.request_stop()
        self._thread.join(timeout)
        self._client.close()
        assert not self._thread.is_alive(), f"the forwarder did not stop within {timeout}s"
        if self._error is not None:
            raise self._error


Start = Callable[..., Running]


@pytest.fixture
def start_forwarder(rig: ForwardingRig) -> Iterator[Start]:
    """``start(watch=None, http=None, consumer=None, **forwarder)``: a forwarder in the rig's
    group, wired as ``mixpanel-core forward`` wires it; all are stopped after the test."""
    running: list[Running] = []

    def start(
        watch: CommitWatch | None = None,
        http: HttpOptions | None = None,
        consumer: Mapping[str, Any] | None = None,
        **forwarder: Any,
    ) -> Running:
        options = http or HttpOptions(**FAST_RETRIES)
        kafka_consumer = kafka_python().KafkaConsumer(
            bootstrap_servers=rig.bootstrap,
            group_id=rig.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **{**FAST_GROUP, **(consumer or {})},
        )
        settings = MixpanelSettings(token="emulator-token", api_host=rig.emulator.base_url)
        client = IngestionClient(settings, options, name="forwarder")

        def deliver(
            endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
        ) -> Sequence[DeliveryReport]:
            return client.send_batch(endpoint, messages, wait=wait, deadline=deadline).reports

        config = ForwarderConfig(
            **{"source": "bus", "group_id": rig.group, "on_poison": "stop", **forwarder}
        )
        built = Forwarder(
            kafka_consumer if watch is None else WatchedConsumer(kafka_consumer, watch),
            rig.topic,
            deliver,
            config,
            retry_policy=options.retry_policy,
        )
        running.append(Running(built, client))
        return running[-1]

    yield start
    for each in running:
        each.stop()


def _topic_ids(rig: ForwardingRig, count: int) -> dict[Position, str]:
    """The ``$insert_id`` of every record in the rig's topic, by partition and offset."""
    records = read_records(rig.bootstrap, rig.topic, count)
    assert len(records) == count, f"read {len(records)} of {count} records back"
    return {
        (r.partition, r.offset): json.loads(r.value)["properties"]["$insert_id"] for r in records
    }


def _ends(ids: Mapping[Position, str]) -> dict[int, int]:
    """The last offset of each partition."""
    ends: dict[int, int] = {}
    for partition, offset in ids:
        ends[partition] = max(offset, ends.get(partition, -1))
    return ends


def test_a_member_joining_mid_stream_loses_nothing_and_never_commits_past_an_undelivered_record(
    rig: ForwardingRig, start_forwarder: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """Eager rebalancing revokes every partition of the first member and hands most of them
    back; kafka-python keeps their fetch positions. The records the member dropped from its
    buffer at the revocation must still be read again, delivered, and only then committed."""
    caplog.set_level(logging.INFO, logger="mixpanel_core.forwarder")
    produced = rig.produce_events(600, prefix="before")
    watch = CommitWatch(rig.emulator)
    # A long linger holds everything the first member reads in its buffer, undelivered.
    first = start_forwarder(watch, linger=60.0, shutdown_deadline=20.0)
    wait_until(lambda: first.forwarder.metrics.consumed >= 600)
    # A second member joins: the rebalance revokes the first one's partitions mid-buffer.
    second = start_forwarder(watch, linger=0.1)
    rig.wait_for_delivered(1)  # the second member got partitions: the rebalance is over
    produced += rig.produce_events(90, prefix="after")  # traffic goes on
    ids = _topic_ids(rig, len(produced))
    ends = _ends(ids)
    # Both members have read to the end of their partitions (the first, past what it dropped).
    wait_until(lambda: all(watch.handed_out.get(p, -1) >= end for p, end in ends.items()))

    first.stop()  # delivers what it holds and commits, as on SIGTERM; the second takes over
    assert watch.past_undelivered(ids) == []
    wait_until(lambda: set(rig.delivered_insert_ids()) >= set(produced))
    second.stop()

    assert watch.past_undelivered(ids) == []
    dropped = re.findall(r"partitions revoked: .+ \(dropped (\d+) buffered records", caplog.text)
    assert sum(map(int, dropped)) > 0, "records were buffered when their partition was revoked"
    assert sorted(rig.committed().values()) == sorted(end + 1 for end in ends.values())


def _produce_while(client: Mixpanel, condition: Callable[[], bool], chunk: int) -> int:
    """Track ``chunk`` events at a time, each stored by the broker, while ``condition`` holds;
    returns how many."""
    produced = 0
    while condition():
        for i in range(chunk):
            client.track(f"later-{i % 50}", "Played", {"i": produced + i})
        assert client.flush(30) == []
        produced += chunk
    return produced


def test_while_mixpanel_fails_every_request_the_records_held_stay_bounded_and_all_arrive_later(
    rig: ForwardingRig, start_forwarder: Start
) -> None:
    """A 503 outage: between retry rounds the forwarder keeps its partitions paused, so what it
    holds stays under a full batch plus one poll however much the topic grows meanwhile."""
    batch_records, max_poll_records = 100, 200
    bound = batch_records + max_poll_records
    rig.emulator.fail_fraction(1.0, [503])
    produced = len(rig.produce_events(1000))
    # Short retry rounds: without backpressure, each round would read another poll's worth.
    http = HttpOptions(**{**FAST_RETRIES, "retry_budget": 0.3})
    running = start_forwarder(
        http=http,
        consumer={"max_poll_records": max_poll_records},
        batch_records=batch_records,
        linger=0.1,
    )
    most_held = 0
    deadline = time.monotonic() + 60.0

    def outage_goes_on() -> bool:
        nonlocal most_held
        most_held = max(most_held, running.held)
        failed: int = rig.emulator.stats()["requests"].get("track", {}).get("503", 0)
        if time.monotonic() > deadline:
            pytest.fail(f"only {failed} requests failed within 60s")
        return failed < 40  # several retry rounds, each a chance to read more

    client = rig.client()
    try:
        produced += _produce_while(client, outage_goes_on, 100)
    finally:
        client.close(30)

    assert running.forwarder.metrics.delivered == 0, "the outage lasted throughout"
    assert 0 < most_held <= bound, f"held {most_held} records; at most {bound} expected"
    rig.emulator.clear_faults()
    wait_until(lambda: len(set(rig.delivered_insert_ids())) >= produced)
    running.stop()
    assert sum(offset or 0 for offset in rig.committed().values()) == produced
