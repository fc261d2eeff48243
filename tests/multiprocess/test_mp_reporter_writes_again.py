"""A reporter (a plugin's ``mixpanel_delivered``) may write to the transport again on the
thread that made the report: track an event saying a delivery failed, flush, or close.

The producer made these reports while it held its queue lock, which a write takes: such a
reporter waited for a lock its own thread held. Tracking from the FAILED reports of a batch that
waited out ``block_timeout`` filled a batch and hung for ever; a flush or a close from a DROPPED
report (``drop_newest``) waited out its whole bound, and the close never asked the sender to stop.

The sender is paused (SIGSTOP) so that the pipe stays full, and resumed before the reporter's
flush or close, which then has room. Every wait is bounded: a hang fails the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from mp_workers import TOKEN, config_for
from pipe_probe import paused_sender, pipe_capacity

from mixpanel_core import hookimpl
from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.errors import MixpanelCoreError
from mixpanel_core.pipeline import Pipeline

pytestmark = pytest.mark.integration

BATCH = 50
PAD = "x" * 30_000
"""One batch: 1.5 MB, more than the pipe holds, so that it cannot be written whole."""
NOTICE = "Delivery failed"
BOUND = 6.0
"""The reporter's flush or close timeout: what it waited out when it waited for itself."""
HUNG = 30.0


class WriteOnReport:
    """On reports of ``status``: ``act(report)``, once or for every report; keeps every report
    and what each ``act`` raised or returned."""

    def __init__(
        self, status: str, act: Callable[[Mixpanel, DeliveryReport], object], once: bool
    ) -> None:
        self.status = status
        self.act = act
        self.once = once
        self.client: Mixpanel | None = None
        self.reports: list[DeliveryReport] = []
        self.outcomes: list[tuple[str, float]] = []

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        self.reports.append(report)
        if report.status.value != self.status or (self.once and self.outcomes):
            return
        if _event_of(report) == NOTICE:
            return  # what it tracked itself: no notice of a notice
        started = time.monotonic()
        try:
            assert self.client is not None
            outcome = repr(self.act(self.client, report))
        except MixpanelCoreError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        self.outcomes.append((outcome, time.monotonic() - started))

    def statuses(self, event: str) -> dict[str, list[str]]:
        """Each message of ``event`` (by ``$insert_id``) with the statuses it was reported."""
        found: dict[str, list[str]] = {}
        for report in self.reports:
            if report.message is not None and _event_of(report) == event:
                found.setdefault(str(report.message.insert_id), []).append(report.status.value)
        return found


def _event_of(report: DeliveryReport) -> object:
    return None if report.message is None else report.message.record.get("event")


def _client(config: Config, plugin: WriteOnReport) -> tuple[Mixpanel, Any]:
    pipeline = Pipeline([("writer", plugin)], config.transports, config)
    client = Mixpanel(TOKEN, config=config, pipeline=pipeline)
    plugin.client = client
    return client, client.pipeline.transport("default")


def _pause_sender(transport: Any) -> Callable[[], None]:
    """Stop the sender (SIGSTOP) once it runs; returns what resumes it."""
    paused_sender(transport)
    assert len(PAD) * BATCH > pipe_capacity(transport.channel), "one batch must not fit in the pipe"
    process = transport.supervisor.process

    def resume() -> None:
        # Also after a close the sender stopped on: not once it is reaped (its pid reused).
        if process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)

    return resume


def _track_a_batch(client: Mixpanel) -> tuple[threading.Thread, list[str]]:
    """A thread tracking one batch of big events (the last queues it); what it raised."""
    raised: list[str] = []

    def track() -> None:
        try:
            for n in range(BATCH):
                client.track("u", "Big", {"$insert_id": f"big-{n}", "pad": PAD})
        except MixpanelCoreError as exc:
            raised.append(type(exc).__name__)

    thread = threading.Thread(target=track, name="batch-writer", daemon=True)
    thread.start()
    return thread, raised


def _close_and_stop(client: Mixpanel, transport: Any) -> None:
    # A hung writer holds the queue lock for ever: the sender would never be asked to stop.
    client.close(timeout=10)
    process = transport.supervisor.process
    process.join(10)
    if process.is_alive():
        process.kill()


def test_a_reporter_tracking_on_each_failed_report_does_not_hang(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, batch_size=BATCH, linger=60.0, block_timeout=1.0)

    def notice(client: Mixpanel, report: DeliveryReport) -> None:
        assert report.message is not None
        client.track("u", NOTICE, {"$insert_id": f"notice-{report.message.insert_id}"})

    plugin = WriteOnReport("failed", notice, once=False)
    client, transport = _client(config, plugin)
    resume = _pause_sender(transport)
    try:
        writer, raised = _track_a_batch(client)
        writer.join(HUNG)
        assert not writer.is_alive(), "the reporter's track waited for its own thread's lock"
    finally:
        resume()
        _close_and_stop(client, transport)

    # The batch waited out block_timeout: each message reported FAILED once, then raised.
    assert raised == ["QueueFullError"]
    assert plugin.statuses("Big") == {f"big-{n}": ["failed"] for n in range(BATCH)}
    # The reporter's BATCH-th notice filled a batch of its own, which met the same full pipe.
    notices = plugin.statuses(NOTICE)
    assert notices == {f"notice-big-{n}": ["failed"] for n in range(BATCH)}
    assert [outcome for outcome, _ in plugin.outcomes] == ["None"] * (BATCH - 1) + [
        "QueueFullError: transports.default: the queue stayed full for 1.0s (policy 'block'); "
        f"{BATCH} messages were not queued. Raise max_queue_messages or block_timeout, or "
        "choose a drop policy."
    ]


@pytest.mark.parametrize("act", ["flush", "close"])
def test_a_reporter_flushing_or_closing_on_a_dropped_report_is_not_held_up(
    emulator: EmulatorProcess, act: str
) -> None:
    config = config_for(
        emulator.base_url,
        batch_size=BATCH,
        linger=60.0,
        block_timeout=1.0,
        when_full="drop_newest",
        shutdown_timeout=30.0,
    )
    resumed: list[Callable[[], None]] = []

    def resume_and_act(client: Mixpanel, report: DeliveryReport) -> object:
        # The pipe has room again: only a lock held by this very thread could stop the call.
        resumed[0]()
        return client.flush(BOUND) if act == "flush" else client.close(BOUND)

    plugin = WriteOnReport("dropped", resume_and_act, once=True)
    client, transport = _client(config, plugin)
    resumed.append(_pause_sender(transport))
    try:
        writer, raised = _track_a_batch(client)
        writer.join(HUNG)
        assert not writer.is_alive(), "the reporter's call waited for its own thread's lock"
    finally:
        resumed[0]()
        _close_and_stop(client, transport)

    # drop_newest: its first part written, the batch gave up at block_timeout; not raised.
    assert raised == []
    assert plugin.statuses("Big") == {f"big-{n}": ["dropped"] for n in range(BATCH)}
    [(outcome, took)] = plugin.outcomes
    assert outcome == "[]"
    assert took < BOUND / 2, f"the reporter's {act} waited {took:.1f}s"
    if act == "close":
        # The close asked the sender to stop, and the sender stopped on it, not terminated.
        supervisor = transport.supervisor
        assert supervisor.process.exitcode == 0
        assert (supervisor.failure, supervisor.unaccounted) == (None, 0)
