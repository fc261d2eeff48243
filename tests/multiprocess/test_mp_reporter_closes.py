"""A reporter (a plugin's ``mixpanel_delivered``) may call ``close()``, as with the other
transports, also while a close is under way and on the threads that close waits for: the
report listener, the closing thread itself, the linger thread. Such a close returns at once.

When a second close waited for the first, each of these waited out ``shutdown_timeout``: the
listener, blocked in its reporter, never read the sender's DONE, so the owner called a sender
that had delivered everything dead (``unaccounted`` 10) and its close returned before 9 of the
10 reports were made; a reporter closing on the closing thread or the linger thread held the
close 6 s past a bound of 2 s."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from mp_workers import TOKEN, config_for

from mixpanel_core import hookimpl
from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.pipeline import Pipeline

pytestmark = pytest.mark.integration

EVENTS = 10
SHUTDOWN = 6.0
"""``shutdown_timeout``: how long a close that waited for itself would wait."""


class CloseOnReport:
    """Calls ``client.close()`` from its first report of ``status`` (any, when ``None``),
    after ``before_close``."""

    def __init__(self, status: str | None = None, before_close: Any = None) -> None:
        self.status = status
        self.before_close = before_close
        self.client: Mixpanel | None = None
        self.statuses: list[str] = []
        self.nested: list[tuple[str, float, int]] = []
        self.called = threading.Event()

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        self.statuses.append(report.status.value)
        if self.called.is_set() or self.status not in (None, report.status.value):
            return
        self.called.set()
        if self.before_close is not None:
            self.before_close()
        assert self.client is not None
        started = time.monotonic()
        left = self.client.close()
        took = time.monotonic() - started
        self.nested.append((threading.current_thread().name, took, len(left)))


def _client(config: Config, plugin: CloseOnReport) -> tuple[Mixpanel, Any]:
    pipeline = Pipeline([("closer", plugin)], config.transports, config)
    client = Mixpanel(TOKEN, config=config, pipeline=pipeline)
    plugin.client = client
    return client, client.pipeline.transport("default")


def _kill_the_sender(transport: Any) -> None:
    transport.supervisor.process.kill()
    deadline = time.monotonic() + 20
    while transport.channel.sender_alive():
        assert time.monotonic() < deadline, "the sender did not die"
        time.sleep(0.02)


def test_a_reporter_closing_on_the_report_thread_during_close_leaves_no_false_loss(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, linger=30.0, shutdown_timeout=SHUTDOWN)
    plugin = CloseOnReport()
    client, transport = _client(config, plugin)
    for n in range(EVENTS):
        client.track("u", "Tick", {"$insert_id": f"e-{n}"})

    assert client.close() == []

    # Every report made before close() returned, the sender's end read as such.
    assert plugin.statuses == ["accepted"] * EVENTS
    [(thread, took, left)] = plugin.nested
    assert thread != threading.current_thread().name
    assert (took < SHUTDOWN / 2, left) == (True, 0)
    supervisor = transport.supervisor
    assert (supervisor.counts, supervisor.unaccounted, supervisor.failure) == (
        {"accepted": EVENTS},
        0,
        None,
    )
    assert sorted(emulator.insert_ids("track")) == sorted(f"e-{n}" for n in range(EVENTS))


def test_a_reporter_closing_on_the_closing_thread_returns_at_once(
    emulator: EmulatorProcess,
) -> None:
    # The sender is gone: close() reports the last batch FAILED on its own thread.
    config = config_for(emulator.base_url, linger=30.0, shutdown_timeout=SHUTDOWN)
    plugin = CloseOnReport("failed")
    client, transport = _client(config, plugin)
    for n in range(3):
        client.track("u", "Tick", {"$insert_id": f"e-{n}"})
    _kill_the_sender(transport)

    started = time.monotonic()
    left = client.close(2.0)
    took = time.monotonic() - started

    assert len(left) == 3
    assert plugin.statuses == ["failed"] * 3
    [(thread, nested_took, nested_left)] = plugin.nested
    assert (thread, nested_left) == (threading.current_thread().name, 0)
    assert nested_took < SHUTDOWN / 2
    assert took < SHUTDOWN / 2, "the close waited past its own bound of 2 s"


def test_a_reporter_closing_on_the_linger_thread_does_not_hold_up_the_close(
    emulator: EmulatorProcess,
) -> None:
    # The sender is gone: the linger thread reports its batch FAILED; its reporter waits until
    # the main thread's close has begun, then closes too.
    config = config_for(emulator.base_url, linger=0.2, block_timeout=2.0, shutdown_timeout=SHUTDOWN)
    in_report = threading.Event()

    def once_the_main_close_began() -> None:
        in_report.set()
        deadline = time.monotonic() + 10
        while not transport._producer._closed:
            assert time.monotonic() < deadline, "the main close never began"
            time.sleep(0.01)

    plugin = CloseOnReport("failed", before_close=once_the_main_close_began)
    client, transport = _client(config, plugin)
    _kill_the_sender(transport)
    for n in range(3):
        client.track("u", "Tick", {"$insert_id": f"e-{n}"})

    assert in_report.wait(30), "the linger thread never reported the batch"
    started = time.monotonic()
    client.close()
    took = time.monotonic() - started

    deadline = time.monotonic() + 10
    while not plugin.nested:
        assert time.monotonic() < deadline, "the linger thread's reporter never closed"
        time.sleep(0.01)
    [(thread, nested_took, _)] = plugin.nested
    assert thread.endswith("-linger")
    assert nested_took < SHUTDOWN / 2
    assert took < SHUTDOWN / 2, "the main close waited for the linger thread's close"
    assert plugin.statuses == ["failed"] * 3


def test_a_reporter_making_the_first_close_on_the_linger_thread_closes(
    emulator: EmulatorProcess,
) -> None:
    """It raised ``RuntimeError: cannot join current thread`` (the close was left half done,
    the transport marked closed), and it waited for the write its own thread was making."""
    config = config_for(emulator.base_url, linger=0.2, block_timeout=2.0, shutdown_timeout=SHUTDOWN)
    plugin = CloseOnReport("failed")
    client, transport = _client(config, plugin)
    _kill_the_sender(transport)
    for n in range(3):
        client.track("u", "Tick", {"$insert_id": f"e-{n}"})

    deadline = time.monotonic() + 20
    while not plugin.nested:
        assert time.monotonic() < deadline, "the linger thread's reporter never closed"
        time.sleep(0.01)

    [(thread, took, left)] = plugin.nested
    assert (thread.endswith("-linger"), left) == (True, 0)
    assert took < SHUTDOWN / 2, "the close waited for the write of its own thread"
    assert plugin.statuses == ["failed"] * 3
    assert transport._close_done.is_set()
    assert client.close() == []


def test_a_reporter_making_the_first_close_on_the_report_thread_closes(
    emulator: EmulatorProcess,
) -> None:
    """It raised ``RuntimeError: cannot join current thread`` after waiting out the sender's
    grace, having called the sender that delivered everything dead (``unaccounted`` 10). It
    asks the sender to stop and returns; the last reports follow once the reporter returns."""
    config = config_for(emulator.base_url, linger=0.05, shutdown_timeout=SHUTDOWN)
    plugin = CloseOnReport("accepted")
    client, transport = _client(config, plugin)
    for n in range(EVENTS):
        client.track("u", "Tick", {"$insert_id": f"e-{n}"})

    deadline = time.monotonic() + 30
    while len(plugin.statuses) < EVENTS or not transport._close_done.is_set():
        assert time.monotonic() < deadline, (plugin.statuses, plugin.nested)
        time.sleep(0.01)
    assert transport.supervisor.wait_until_finished(30)

    [(thread, took, left)] = plugin.nested
    assert (thread.endswith("-reports"), left) == (True, 0)
    assert took < SHUTDOWN / 2
    assert plugin.statuses == ["accepted"] * EVENTS
    supervisor = transport.supervisor
    assert (supervisor.counts, supervisor.unaccounted, supervisor.failure) == (
        {"accepted": EVENTS},
        0,
        None,
    )
    assert sorted(emulator.insert_ids("track")) == sorted(f"e-{n}" for n in range(EVENTS))
    assert client.close() == []


def _reaped(pid: int) -> bool:
    """The process has ended and is gone from the process table (not running, not a
    zombie). Read from /proc, since asking multiprocessing (``is_alive``) would reap it."""
    return not os.path.exists(f"/proc/{pid}")


def test_the_report_thread_s_close_still_stops_the_sender_within_its_bound(
    emulator: EmulatorProcess,
) -> None:
    """The close returns at once, but the bounded wait runs on: the sender, held in a request
    the stalled emulator never answers, is terminated at the bound (the interpreter's exit
    joins it without one: 40 s past a bound of 2 s), then reaped (it stayed a zombie)."""
    config = config_for(
        emulator.base_url,
        direct={"type": "http", "read_timeout": 60.0, "max_retries": 0},
        linger=0.05,
        batch_size=1,
        shutdown_timeout=2.0,
    )
    plugin = CloseOnReport("accepted", before_close=emulator.client.stall)
    client, transport = _client(config, plugin)
    try:
        for n in range(EVENTS):
            client.track("u", "Tick", {"$insert_id": f"e-{n}"})
        deadline = time.monotonic() + 30
        while not plugin.nested:
            assert time.monotonic() < deadline, "the reporter never closed"
            time.sleep(0.01)
        pid = transport.supervisor.process.pid
        deadline = time.monotonic() + 20
        while not _reaped(pid):
            assert time.monotonic() < deadline, "the sender was neither stopped nor reaped"
            time.sleep(0.05)
    finally:
        emulator.client.release()
    [(_, took, _)] = plugin.nested
    assert took < 1.0
