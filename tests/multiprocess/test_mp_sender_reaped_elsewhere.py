"""A sender that another part of the process reaps is still seen dead (review R69 F3).

gunicorn's master reaps every child that exits with ``os.waitpid(-1, WNOHANG)`` on SIGCHLD.
After that, ``multiprocessing`` can no longer learn the sender's exit code (it stays
``None``): the owner, which looked at the exit code, never noticed the death, and its
``close()`` waited out the whole shutdown timeout, then blamed slow hooks.
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType

import pytest
from mp_workers import SYNCHRONOUS_DIRECT, config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

EVENTS = 30


def _reap_every_child(signum: int, frame: FrameType | None) -> None:
    """What a pre-fork master's SIGCHLD handler does."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def test_a_sender_reaped_elsewhere_is_seen_dead_and_close_does_not_wait_for_it(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, SYNCHRONOUS_DIRECT, batch_size=10, shutdown_timeout=20)
    client, counter = observed_client(config)
    transport = client.pipeline.transport("default")
    previous = signal.signal(signal.SIGCHLD, _reap_every_child)
    emulator.client.stall()
    try:
        for i in range(EVENTS):
            client.track("u", "Held", {"i": i})
        transport._producer.flush()  # type: ignore[attr-defined]
        waited_until = time.monotonic() + 20
        while transport.channel.taken.value < 10:  # type: ignore[attr-defined]
            assert time.monotonic() < waited_until, "the sender never took the first batch"
            time.sleep(0.01)
        supervisor = transport.supervisor  # type: ignore[attr-defined]
        os.kill(supervisor.process.pid, signal.SIGKILL)
        noticed_by = time.monotonic() + 10
        while supervisor.failure is None:
            assert time.monotonic() < noticed_by, "the owner never noticed the sender's death"
            time.sleep(0.05)
        started = time.monotonic()
        client.close()
        took = time.monotonic() - started
    finally:
        emulator.client.release()
        signal.signal(signal.SIGCHLD, previous)
    assert supervisor.process.exitcode is None  # reaped by the handler: multiprocessing never knew
    assert "died (exit code unknown: another part of this process reaped it)" in supervisor.failure
    assert supervisor.unaccounted == EVENTS
    assert counter.by_status == {}
    assert took < 5
