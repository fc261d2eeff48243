"""``flush()`` from a ``mixpanel_delivered`` hook, on the owner's thread that reads the
sender's reports (review R69 F4): the sender's answer can only be read by that thread once the
hook returns, so the flush waited out its whole bound, holding every other report back, then
raised as if the sender had not answered. It now raises at once, saying why."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from mp_workers import config_for

from mixpanel_core import Mixpanel, hookimpl
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.errors import TransportError
from mixpanel_core.pipeline import Pipeline

pytestmark = pytest.mark.integration


class FlushingHook:
    """Flushes the client from the first report it hears of, and notes what that did."""

    def __init__(self) -> None:
        self.client: Any = None
        self.flushed: list[tuple[str, float, str]] = []
        self.heard: list[float] = []
        self.all_heard = threading.Event()

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        self.heard.append(time.monotonic())
        if len(self.heard) == 1:
            started = time.monotonic()
            try:
                self.client.flush(5)
                self.flushed.append(("returned", time.monotonic() - started, ""))
            except TransportError as exc:
                self.flushed.append(("TransportError", time.monotonic() - started, str(exc)))
        if len(self.heard) == 4:
            self.all_heard.set()


def test_flush_from_a_relayed_report_raises_at_once_and_holds_no_report_back(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, batch_size=1, forward_reports=True)
    hook = FlushingHook()
    client = Mixpanel(
        "emulator-token",
        config=config,
        pipeline=Pipeline([("hook", hook)], config.transports, config),
    )
    hook.client = client
    try:
        for i in range(4):
            client.track("u", "e", {"i": i})
        assert hook.all_heard.wait(30), hook.heard
    finally:
        client.close()
    [(outcome, took, text)] = hook.flushed
    assert outcome == "TransportError"
    assert "cannot wait for the sender on the thread that reads its reports" in text
    assert took < 1
    assert hook.heard[-1] - hook.heard[0] < 3  # not held back by a flush waiting 5 s
