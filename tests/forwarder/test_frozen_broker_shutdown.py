"""SIGTERM while the Kafka broker stops answering (frozen with SIGSTOP: its connections stay
open, nothing replies), against a real broker of the test's own and the emulator: the final
commit and leaving the group are bounded by ``shutdown_deadline``, and a commit already out
when the signal comes by ``COMMIT_TIMEOUT``, not by kafka-python's ``request_timeout_ms`` (30 s
each), and the forwarder exits 0."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixpanel_core.emulator import Emulator
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker

from .conftest import ForwardingRig, free_port, wait_until

pytestmark = pytest.mark.integration

MARGIN = 10.0
"""Generous on shared cores (the exit takes the deadline plus about a second), and far below
the 30 s each of the commit and the group leave took before."""


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A broker of this test's own: freezing the session's would stall every other test."""
    with EmbeddedBroker() as own:
        yield own


@pytest.fixture
def frozen_rig(
    broker: EmbeddedBroker, mixpanel_emulator: Emulator, tmp_path: Path
) -> Iterator[ForwardingRig]:
    servers = broker.bootstrap_servers
    topic, dead_letter_topic = f"frozen-{uuid.uuid4().hex[:8]}", f"dl-{uuid.uuid4().hex[:8]}"
    create_topic(servers, topic, 3)
    create_topic(servers, dead_letter_topic, 1)
    built = ForwardingRig(servers, topic, dead_letter_topic, mixpanel_emulator, tmp_path)
    yield built
    built.stop_all()


@contextlib.contextmanager
def frozen(broker: EmbeddedBroker) -> Iterator[None]:
    """The broker stopped (SIGSTOP) for the block, and always continued (SIGCONT) after it."""
    process = broker._process  # EmbeddedBroker does not expose its pid otherwise
    assert process is not None, "the broker is running"
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def stop_and_time(
    process: subprocess.Popen[str], broker: EmbeddedBroker, frozen_for: float = 0.0
) -> tuple[int | None, float, str]:
    """SIGTERM to the forwarder ``process`` once the broker has been frozen for ``frozen_for``
    seconds; its exit code, how long the exit took and its stderr."""
    with frozen(broker):
        time.sleep(frozen_for)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        took = time.monotonic() - started
    return process.returncode, took, stderr


def test_sigterm_with_the_broker_not_answering_leaves_the_group_within_the_deadline(
    frozen_rig: ForwardingRig, broker: EmbeddedBroker
) -> None:
    """Everything delivered and committed: only leaving the group is left to do."""
    deadline = 3.0
    rig = frozen_rig
    produced = rig.produce_events(20)
    process = rig.start(rig.write_config({"shutdown_deadline": deadline}))
    rig.wait_for_delivered(20)
    wait_until(lambda: sum(o or 0 for o in rig.committed().values()) == 20, 60)

    code, took, stderr = stop_and_time(process, broker)

    assert code == 0, stderr
    assert took < deadline + MARGIN, f"exit took {took:.1f}s with shutdown_deadline={deadline}"
    assert sorted(rig.delivered_insert_ids()) == sorted(produced)


def test_sigterm_during_a_delivery_with_the_broker_not_answering_exits_within_the_deadline(
    frozen_rig: ForwardingRig, broker: EmbeddedBroker
) -> None:
    """The delivery out at the signal is answered before the deadline; its commit cannot be,
    and is given up at the deadline with a WARNING: those records are delivered again by the
    next forwarder (at least once), rather than the exit waiting 30 s for each commit and
    another 30 s to leave the group."""
    deadline = 8.0
    rig = frozen_rig
    port = free_port()
    produced = rig.produce_events(20)
    # Answered 2 s after each request: well after the freeze below, well before the deadline.
    rig.emulator.client.set_latency(2.0)
    process = rig.start(rig.write_config({"shutdown_deadline": deadline, "metrics_port": port}))
    rig.wait_for_consumed(port, 20)

    code, took, stderr = stop_and_time(process, broker)

    assert code == 0, stderr
    assert took < deadline + MARGIN, f"exit took {took:.1f}s with shutdown_deadline={deadline}"
    assert sorted(rig.delivered_insert_ids()) == sorted(produced)
    assert "WARNING mixpanel_core.forwarder: commit failed while stopping" in stderr


def test_sigterm_while_a_commit_waits_for_the_broker_not_answering_exits_within_the_deadline(
    frozen_rig: ForwardingRig, broker: EmbeddedBroker
) -> None:
    """The broker stops answering while the forwarder delivers and commits turn after turn:
    the commit after the delivery then out waited kafka-python's ``request_timeout_ms``
    (30 s), and held the SIGTERM that long. It waits ``COMMIT_TIMEOUT`` (5 s) at most, and its
    offsets are left to the next commit."""
    deadline = 4.0
    rig = frozen_rig
    rig.produce_events(3000)
    # About 3 deliveries a second: still delivering (and committing) when frozen.
    rig.emulator.client.set_latency(0.3)
    process = rig.start(rig.write_config({"shutdown_deadline": deadline, "batch_records": 100}))
    rig.wait_for_delivered(300)

    # Frozen for 1 s before the signal: the delivery out at the freeze returns, and the
    # commit after it waits for the broker.
    code, took, stderr = stop_and_time(process, broker, frozen_for=1.0)

    assert code == 0, stderr
    assert took < deadline + MARGIN, f"exit took {took:.1f}s with shutdown_deadline={deadline}"
    assert "commit not answered within 5.0s" in stderr, "a commit was out at the signal"
