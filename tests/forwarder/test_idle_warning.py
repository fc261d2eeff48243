"""A forwarder holding no partition warns when no member of its group delivers, against the real
broker (docs/forwarder.md, *Observing it*, and ``idle_warning`` in the ``[forwarder]`` table).

The member holding the topic's one partition here is a plain kafka-python consumer of the
group: one that never commits stands for a group stuck with nobody delivering (a wedged
member, a rebalance that does not settle), one that commits as it goes for a healthy group in
which the forwarder is merely one member too many.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from mixpanel_core.forwarder.idle_watch import IdleWatch
from mixpanel_core.forwarder.metrics import ForwarderMetrics
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.kafka.client_library import kafka_python

from .conftest import FAST_GROUP, ForwardingRig, free_port, wait_until

pytestmark = pytest.mark.integration

WAITING = 6
IDLE_THREAD = "mixpanel-forwarder-idle-watch"
WARNING = "has held no partition of"


@pytest.fixture
def rig_partitions() -> int:
    return 1


class _Member:
    """A consumer of the rig's group, polling on its own thread; it commits each record it
    reads when ``commits``, one every ``pace`` seconds, and never commits otherwise."""

    def __init__(self, rig: ForwardingRig, *, commits: bool, pace: float = 0.4) -> None:
        self.consumer = kafka_python().KafkaConsumer(
            bootstrap_servers=rig.bootstrap,
            group_id=rig.group,
            # Sorted first among the group's members, so the assignors give it the partition.
            client_id="a-member-first",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1,
            **FAST_GROUP,
        )
        self.consumer.subscribe([rig.topic])
        self.commits = commits
        self.pace = pace
        self.read = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            batches = self.consumer.poll(timeout_ms=200)
            for records in batches.values():
                self.read += len(records)
                if self.commits:
                    self.consumer.commit()
                    time.sleep(self.pace)

    def holds_the_partition(self) -> bool:
        return bool(self.consumer.assignment())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close(autocommit=False)


@pytest.fixture
def members() -> Iterator[list[_Member]]:
    started: list[_Member] = []
    yield started
    for member in started:
        member.close()


def _produce(rig: ForwardingRig, count: int) -> None:
    """``count`` events, each stored alone: some Kafka-compatible brokers (the embedded test
    broker) list the end of a partition as the first offset of its last batch, plus one."""
    client = rig.client()
    try:
        for i in range(count):
            client.track(f"user-{i}", "Played", {"i": i})
            assert client.flush(30) == []
    finally:
        client.close(30)


def _run_idle_forwarder(
    rig: ForwardingRig, member: _Member, watch: float, idle_warning: float = 1.0
) -> tuple[str, float]:
    """A forwarder joining the group after ``member`` took the partition, left idle for
    ``watch`` seconds after it served its metrics: its stderr, and the stalled-group gauge."""
    port = free_port()
    config = rig.write_config({"metrics_port": port, "idle_warning": idle_warning})
    process, log = rig.start_logged(config)
    wait_until(lambda: "partitions assigned: none" in log.read_text(), 60)  # joined
    time.sleep(watch)
    assert member.holds_the_partition(), "the test's member must hold the one partition"
    assert rig.metric(port, "mixpanel_forwarder_assigned_partitions") == 0
    stalled = rig.metric(port, "mixpanel_forwarder_stalled_group_lag")
    assert stalled is not None
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 0, log.read_text()
    return log.read_text(), stalled


def test_an_idle_forwarder_warns_when_the_group_commits_nothing(
    rig: ForwardingRig, members: list[_Member]
) -> None:
    _produce(rig, WAITING)
    member = _Member(rig, commits=False)
    members.append(member)
    wait_until(member.holds_the_partition, 60)

    stderr, stalled = _run_idle_forwarder(rig, member, watch=4.0)

    warnings = [line for line in stderr.splitlines() if WARNING in line]
    assert warnings, stderr
    line = warnings[-1]  # one per check while the group stands still
    assert f"while {WAITING} record(s) wait past its commits" in line
    assert f"group {rig.group} committed nothing" in line
    assert stalled == WAITING
    assert rig.delivered_insert_ids() == [], "the forwarder never held the partition"


def test_an_idle_forwarder_is_quiet_while_another_member_delivers(
    rig: ForwardingRig, members: list[_Member]
) -> None:
    """The other member commits one record every 0.4 s over the whole watch: no warning.

    The checks are 6 s apart here: the forwarder's join makes the member stop committing
    while the group rebalances (about 3 s on the embedded broker), which a check interval
    shorter than that would rightly take for a group standing still.
    """
    _produce(rig, 60)
    member = _Member(rig, commits=True, pace=0.4)
    members.append(member)
    wait_until(member.holds_the_partition, 60)

    stderr, stalled = _run_idle_forwarder(rig, member, watch=13.0, idle_warning=6.0)

    assert member.read < 60, "the member must still have been committing during the watch"
    assert WARNING not in stderr, stderr
    assert stalled == 0


def test_no_warning_with_idle_warning_zero(rig: ForwardingRig, members: list[_Member]) -> None:
    _produce(rig, WAITING)
    member = _Member(rig, commits=False)
    members.append(member)
    wait_until(member.holds_the_partition, 60)

    stderr, stalled = _run_idle_forwarder(rig, member, watch=3.0, idle_warning=0)

    assert WARNING not in stderr, stderr
    assert stalled == 0


def test_the_checks_never_hold_the_loop_while_the_broker_does_not_answer() -> None:
    """kafka-python's ``partitions_for_topic`` waits for a broker that does not answer without
    any timeout (a topic its consumer does not know yet): the reads are made on the watch's
    own thread, and the loop's turns, which must keep polling and honour a stop, go on."""
    broker = EmbeddedBroker().start()
    built: list[Any] = []

    def reader() -> Any:
        built.append(
            kafka_python().KafkaConsumer(
                bootstrap_servers=broker.bootstrap_servers,
                group_id="idle-watch-test",
                enable_auto_commit=False,
            )
        )
        return built[-1]

    watch = IdleWatch(reader, "a-topic-never-seen", "idle-watch-test", 0.2, ForwarderMetrics())
    try:
        watch.tick(time.monotonic(), holds_partitions=False)
        time.sleep(0.3)
        watch.tick(time.monotonic(), holds_partitions=False)  # the first read is asked for
        wait_until(lambda: bool(built), 30)  # the watch built its reader
        broker._process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
        longest = 0.0
        until = time.monotonic() + 3.0
        while time.monotonic() < until:
            began = time.monotonic()
            watch.tick(began, holds_partitions=False)
            longest = max(longest, time.monotonic() - began)
            time.sleep(0.05)
        assert longest < 0.1, f"a turn of the loop waited {longest:.2f}s for the broker"
        watch.close()  # while the read waits for the broker
    finally:
        broker._process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    try:
        # Once the broker answers, the read ends, and so do the thread and its consumer.
        wait_until(lambda: not any(t.name == IDLE_THREAD for t in threading.enumerate()), 30)
        assert built[0]._closed, "the watch's consumer was closed"
    finally:
        watch.close()
        broker.stop()


def test_reads_that_fail_are_said_once_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A watch that cannot read the group's commits (here: no broker at all) cannot warn: it
    says so once at WARNING, not at every check, rather than being silently off."""
    nowhere = f"127.0.0.1:{free_port()}"

    def reader() -> Any:
        return kafka_python().KafkaConsumer(
            bootstrap_servers=nowhere, group_id="g", api_version_auto_timeout_ms=200
        )

    watch = IdleWatch(reader, "t", "g", 0.1, ForwarderMetrics())
    caplog.set_level(logging.DEBUG, logger="mixpanel_core.forwarder")
    try:
        until = time.monotonic() + 3.0
        tried = 0
        while time.monotonic() < until and tried < 3:
            watch.tick(time.monotonic(), holds_partitions=False)
            tried = sum("cannot read the group's commits" in r.getMessage() for r in caplog.records)
            time.sleep(0.05)
    finally:
        watch.close()
    said = [r for r in caplog.records if "cannot read the group's commits" in r.getMessage()]
    assert len(said) >= 2, "the reads were tried again"
    assert [r.levelno for r in said].count(logging.WARNING) == 1
