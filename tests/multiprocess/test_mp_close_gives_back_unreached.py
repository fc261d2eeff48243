"""When the owner's ``close(timeout)`` runs out before the sender reaches a worker's last
frames, the sender reports those records FAILED and gives them back: ``close()`` returns them,
and the sender's totals count them taken, so none is called lost and the counts add up.

A forked worker stays open, so the owner's stop request says frames may follow it. The worker
writes one frame before the stop request and a burst after it; the emulator holds the first
request until the burst is in the pipe, then answers each request in 0.2 s: the sender's half
of the time left (a quarter of 8 s) for draining ends with most of the burst still queued, and
the other half leaves it ample time to report and stop before the owner's deadline.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

import pytest
from mp_workers import SYNCHRONOUS_DIRECT, config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess import QueueChannel, worker_client

pytestmark = pytest.mark.integration

BURST = 20
WAIT = 30.0
"""Bound on every wait between the test and its worker: a failure, never a hang."""
UNREACHED = "the owner's close() timed out before the sender reached it"


def write_ahead_then_burst(channel: QueueChannel, steps: Any) -> None:
    """The worker: one event to open its producer, one just before the owner's stop request,
    ``BURST`` after it; it closes only once the test is done with it."""
    ready, go_ahead, ahead_sent, go_burst, burst_sent, finish = steps
    client = worker_client(channel)
    client.track("w", "Open", {"$insert_id": "open"})  # its producer registers on first use
    ready.set()
    if go_ahead.wait(WAIT):
        client.track("w", "Ahead", {"$insert_id": "ahead"})
        ahead_sent.set()
    if go_burst.wait(WAIT):
        for n in range(BURST):
            client.track("w", "Burst", {"$insert_id": f"burst-{n}"})
        burst_sent.set()
    finish.wait(WAIT)
    client.close(1)
    os._exit(0)  # skip the exit hooks of what was inherited from the test process


def test_records_the_sender_never_reached_are_returned_by_close_and_counted_taken(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, SYNCHRONOUS_DIRECT, start_method="fork", batch_size=1)
    client, counter = observed_client(config)
    client.pipeline.build_all()
    transport: Any = client.pipeline.transport("default")
    context: Any = multiprocessing.get_context("fork")
    steps = tuple(context.Event() for _ in range(6))
    ready, go_ahead, ahead_sent, go_burst, burst_sent, finish = steps
    worker = context.Process(target=write_ahead_then_burst, args=(transport.channel, steps))
    worker.start()
    try:
        assert ready.wait(WAIT), "the worker never opened its client"
        emulator.client.stall()
        put_control = transport._producer.put_control

        def stop_between_ahead_and_burst(request: Any, timeout: float) -> None:
            # The frame ahead holds the sender on the stalled emulator, so it reads the stop
            # request only once the burst behind it is in the pipe.
            go_ahead.set()
            assert ahead_sent.wait(WAIT), "the worker never wrote its first frame"
            put_control(request, timeout)
            go_burst.set()
            assert burst_sent.wait(WAIT), "the worker never wrote its burst"
            emulator.client.set_latency(0.2)
            emulator.client.release()

        transport._producer.put_control = stop_between_ahead_and_burst
        left = client.close(timeout=8.0)
    finally:
        emulator.client.clear_faults()
        finish.set()
        worker.join(WAIT)
        if worker.is_alive():
            worker.kill()
            worker.join(WAIT)

    supervisor = transport.supervisor
    unreached = {
        report.message.insert_id
        for report in counter.reports
        if report.message is not None and UNREACHED in (report.reason or "")
    }
    # The sender delivered the first two frames and at most a few of the burst in its time.
    assert len(unreached) >= BURST // 4, counter.reports
    assert counter.by_status["failed"] == len(unreached), counter.by_status
    assert {message.insert_id for message in left} == unreached
    assert len(left) == len(unreached)
    assert sum(counter.by_status.values()) == 2 + BURST, counter.by_status
    assert supervisor.counts == dict(counter.by_status)
    assert supervisor.unaccounted == 0
    assert supervisor.unsettled() == 0
