"""SIGTERM during a delivery while the Kafka broker stops answering, against a real broker of
the test's own and the emulator: the stop's first commit runs out of time, so the forwarder
does not make the second one (after the last deliveries) that would wait for the same silent
broker again; it warns once and exits 0."""

from __future__ import annotations

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

from .conftest import ForwardingRig, free_port

pytestmark = pytest.mark.integration

COMMIT_GIVEN_UP = "WARNING mixpanel_core.forwarder: commit failed while stopping"


@pytest.fixture
def own_rig(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> Iterator[tuple[ForwardingRig, EmbeddedBroker]]:
    """A rig on a broker of this test's own: freezing the session's would stall other tests."""
    with EmbeddedBroker() as broker:
        servers = broker.bootstrap_servers
        topic, dead_letters = f"frozen-{uuid.uuid4().hex[:8]}", f"dl-{uuid.uuid4().hex[:8]}"
        create_topic(servers, topic, 1)
        create_topic(servers, dead_letters, 1)
        rig = ForwardingRig(servers, topic, dead_letters, mixpanel_emulator, tmp_path)
        try:
            yield rig, broker
        finally:
            rig.stop_all()


def _stop_while_frozen(process: subprocess.Popen[str], broker: EmbeddedBroker) -> str:
    """SIGTERM to ``process`` with ``broker`` stopped (SIGSTOP) until it exits; its stderr."""
    broker_process = broker._process  # EmbeddedBroker does not expose its pid otherwise
    assert broker_process is not None, "the broker is running"
    os.kill(broker_process.pid, signal.SIGSTOP)
    try:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    finally:
        os.kill(broker_process.pid, signal.SIGCONT)
    assert process.returncode == 0, stderr
    return stderr


def test_a_stop_commit_that_ran_out_of_time_is_not_made_again(
    own_rig: tuple[ForwardingRig, EmbeddedBroker],
) -> None:
    rig, broker = own_rig
    port = free_port()
    rig.produce_events(20)
    # Answered 2 s after each request: the delivery is out when the broker freezes, and
    # returns well before the deadline, leaving its records to the stop's commit.
    rig.emulator.client.set_latency(2.0)
    config = rig.write_config({"shutdown_deadline": 6.0, "metrics_port": port})
    process = rig.start(config)
    rig.wait_for_consumed(port, 20)
    time.sleep(1.0)  # the delivery is out (sent within the 0.2 s linger, answered at 2 s)

    stderr = _stop_while_frozen(process, broker)

    assert stderr.count(COMMIT_GIVEN_UP) == 1, stderr
