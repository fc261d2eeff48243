"""A delivery report hook that sends through its own transport, on the sender thread.

Reports are made on the sender thread, and only that thread makes room in the queue. Under
``when_full = "block"`` a send from there that found the queue full waited out
``block_timeout`` for room that only it could make: nothing was delivered meanwhile, and
every producer was refused with it. It is refused at once instead; ``drop_newest`` and
``drop_oldest`` drop as they always do.
"""

from __future__ import annotations

import threading
import time

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import QueueFullError
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

from .test_buffered_http import make_event

pytestmark = pytest.mark.integration

ROOM = 5
"""``max_queue_messages``: the hook sends one more than this."""

BLOCK_TIMEOUT = 60.0
"""Far longer than the test waits for the hook: a hook that waits for room never ends in time."""


class SendingHook:
    """On the first REJECTED report, sends ``ROOM + 1`` events through the same transport."""

    def __init__(self) -> None:
        self.transport: BufferedHttpTransport | None = None
        self.reports: list[DeliveryReport] = []
        self.sent = 0
        self.refusal: QueueFullError | None = None
        self.seconds = 0.0
        self.done = threading.Event()

    def __call__(self, report: DeliveryReport) -> None:
        self.reports.append(report)
        if report.status is not DeliveryStatus.REJECTED or self.done.is_set():
            return
        assert self.transport is not None
        started = time.monotonic()
        try:
            for n in range(ROOM + 1):
                self.transport.send(make_event("hook", n))
                self.sent += 1
        except QueueFullError as error:
            self.refusal = error
        finally:
            self.seconds = time.monotonic() - started
            self.done.set()


def _transport(emulator: Emulator, hook: SendingHook, when_full: str) -> BufferedHttpTransport:
    settings = MixpanelSettings(api_host=emulator.base_url, token="emulator-token")
    options = BufferedHttpOptions(
        when_full=when_full,  # type: ignore[arg-type]
        block_timeout=BLOCK_TIMEOUT,
        max_queue_messages=ROOM,
        max_retries=0,
        linger=0.01,
        exit_timeout=0.0,
    )
    transport = BufferedHttpTransport(settings, options, name="hooked", report=hook)
    hook.transport = transport
    return transport


def _run_hook(emulator: Emulator, hook: SendingHook, transport: BufferedHttpTransport) -> None:
    emulator.client.fail_next(1, 400, endpoints=["track"])
    transport.send(make_event("first", 0))
    # The hook's sends take microseconds; before the fix the last one waited BLOCK_TIMEOUT.
    assert hook.done.wait(30), "the hook's send waited for room only its own thread makes"


def test_under_block_a_send_from_the_sender_thread_is_refused_at_once(
    mixpanel_emulator: Emulator,
) -> None:
    hook = SendingHook()
    transport = _transport(mixpanel_emulator, hook, "block")
    try:
        _run_hook(mixpanel_emulator, hook, transport)
        assert hook.sent == ROOM
        assert hook.refusal is not None
        message = str(hook.refusal)
        assert "sender's own thread" in message
        assert "mixpanel_delivered" in message
        assert "send from another thread" in message
        assert hook.seconds < 10.0  # it did not wait for room (the timeout is 60 s)
        # Delivery goes on: what the hook queued is delivered, the refused one reported.
        assert transport.flush(30) == []
    finally:
        transport.close(5)
    delivered = set(mixpanel_emulator.client.insert_ids("track"))
    assert delivered == {f"hook-{n:012d}" for n in range(ROOM)}
    dropped = [r for r in hook.reports if r.status is DeliveryStatus.DROPPED]
    assert [r.message.insert_id for r in dropped if r.message] == [f"hook-{ROOM:012d}"]
    assert "sender's own thread" in (dropped[0].reason or "")
    assert transport.dropped == 1


@pytest.mark.parametrize("when_full", ["drop_newest", "drop_oldest"])
def test_the_drop_policies_drop_as_usual_on_the_sender_thread(
    mixpanel_emulator: Emulator, when_full: str
) -> None:
    hook = SendingHook()
    transport = _transport(mixpanel_emulator, hook, when_full)
    try:
        _run_hook(mixpanel_emulator, hook, transport)
        assert (hook.sent, hook.refusal) == (ROOM + 1, None)
        assert transport.flush(30) == []
    finally:
        transport.close(5)
    assert transport.dropped == 1
    kept = range(ROOM) if when_full == "drop_newest" else range(1, ROOM + 1)
    assert set(mixpanel_emulator.client.insert_ids("track")) == {f"hook-{n:012d}" for n in kept}
