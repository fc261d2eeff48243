"""A sender that stops normally while the owner's report listener is between two polls: the
listener's poll times out, it finds the sender exited, drains what the sender left (its
reports, then its DONE), and that is a normal end, not a death. Nothing is called lost, no
"died" is logged, and the counts are the sender's own.

The interleaving is forced: the listener's poll of the report queue is held until the sender
process has exited (everything it sent, DONE last, then waits in the queue) and only then
answers ``queue.Empty``, as a poll whose timeout ran out just before the sender's last items
arrived would.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from typing import Any

import pytest
from mp_workers import config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess import supervisor as supervisor_module

pytestmark = pytest.mark.integration

EVENTS = 20
"""Few: the held reports must fit in the report queue's pipe, or the sender could not exit."""


def test_a_done_drained_after_a_timed_out_poll_ends_a_normal_stop(
    emulator: EmulatorProcess,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The owner's close also takes a sender that exited without a DONE for dead, after this
    # grace: kept out of the way, so that only the listener decides here (a loaded machine
    # must not make the drain look slow enough to be a death).
    monkeypatch.setattr(supervisor_module, "DONE_GRACE", 60.0)
    # Started by hand: the listener polls an empty queue until then, so no poll that reads the
    # sender's items can be in flight when the held one is put in its place.
    client, counter = observed_client(config_for(emulator.base_url, start_sender=False))
    transport: Any = client.pipeline.transport("default")
    supervisor = transport.supervisor
    reports = transport.channel.reports
    real_get = reports.get
    polls = itertools.count()
    held = threading.Event()
    timed_out_after_exit: list[bool] = []

    def poll_timing_out_once_the_sender_exited(
        block: bool = True, timeout: float | None = None
    ) -> Any:
        if next(polls) > 0:
            return real_get(block, timeout)
        held.set()
        waited_until = time.monotonic() + 60
        while supervisor.process is None or supervisor.process.exitcode is None:
            if time.monotonic() > waited_until:
                break
            time.sleep(0.01)
        sender = supervisor.process
        timed_out_after_exit.append(sender is not None and sender.exitcode == 0)
        raise queue.Empty

    monkeypatch.setattr(reports, "get", poll_timing_out_once_the_sender_exited)
    assert held.wait(10), "the report listener never polled again"

    transport.start_sender()
    for i in range(EVENTS):
        client.track("u", "Tick", {"$insert_id": f"tick-{i}"})
    with caplog.at_level(logging.WARNING):
        left = client.close(timeout=60)

    assert timed_out_after_exit == [True], "the held poll did not outlast the sender"
    expected = sorted(f"tick-{i}" for i in range(EVENTS))
    assert left == []
    assert sorted(emulator.insert_ids("track")) == expected
    seen = sorted((r.message.insert_id, r.status.value) for r in counter.reports if r.message)
    assert seen == [(insert_id, "accepted") for insert_id in expected]
    assert len(counter.reports) == EVENTS
    assert supervisor.counts == {"accepted": EVENTS}
    assert supervisor.unaccounted == 0
    assert supervisor.failure is None
    told = [r.getMessage() for r in caplog.records if r.name.startswith("mixpanel_core")]
    assert told == []
