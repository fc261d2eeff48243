"""A sender that ended normally is not taken for dead while the owner is still replaying its
reports through slow ``mixpanel_delivered`` hooks (review C, M1). It was, once it had been
gone for a second: with a hook taking 3 ms a report, the owner's ``close()`` returned with
most reports never made, ``counts`` unset, a false "died (exit code 0) ... lost" ERROR and
that many records counted in ``unaccounted``, although every one was delivered."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from mp_workers import ReportCounter, config_for

from mixpanel_core import Mixpanel, hookimpl
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.pipeline import Pipeline

pytestmark = pytest.mark.integration

EVENTS = 600
HOOK_SECONDS = 0.003
"""Per report: 600 of them take about 1.8 s to replay, past the second a dead sender gets."""


class SlowCounter(ReportCounter):
    @hookimpl
    def mixpanel_delivered(self, report: Any) -> None:
        time.sleep(HOOK_SECONDS)
        super().mixpanel_delivered(report)


def test_reports_replayed_slowly_are_all_made_and_nothing_is_called_lost(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(emulator.base_url, batch_size=100, shutdown_timeout=30.0)
    counter = SlowCounter()
    client = Mixpanel(
        "emulator-token",
        config=config,
        pipeline=Pipeline([("slow", counter)], config.transports, config),
    )
    transport: Any = client.pipeline.transport("default")
    for i in range(EVENTS):
        client.track(f"user-{i}", "Slowly reported")
    with caplog.at_level(logging.WARNING):
        client.close(timeout=30)
    supervisor = transport.supervisor
    assert counter.by_status["accepted"] == EVENTS
    assert supervisor.failure is None
    assert supervisor.unaccounted == 0
    assert supervisor.counts == {"accepted": EVENTS}
    assert "died" not in caplog.text
    assert emulator.client.stats()["accepted"]["track"] == EVENTS
