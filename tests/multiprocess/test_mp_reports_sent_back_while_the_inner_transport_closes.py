"""The reports the inner transport makes while the sender closes it are sent back as they
are made (review R69 F2). They were held until its close returned, and only then sent, all
at once, in the last part of the owner's deadline: the owner's hooks heard nothing for the
whole close, and a backlog whose reports took longer than that part to make and read was
lost to them."""

from __future__ import annotations

import threading
import time

import pytest
from mp_workers import config_for

from mixpanel_core import Mixpanel, hookimpl
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.pipeline import Pipeline

pytestmark = pytest.mark.integration

EVENTS = 5000
INNER = {"type": "buffered_http", "max_batch_records": 500, "linger": 0.02}


class ArrivalTimes:
    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        with self._lock:
            self.times.append(time.monotonic())


def test_reports_reach_the_owner_while_the_inner_transport_closes(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, INNER, batch_size=500)
    arrivals = ArrivalTimes()
    client = Mixpanel(
        "emulator-token",
        config=config,
        pipeline=Pipeline([("arrivals", arrivals)], config.transports, config),
    )
    client.track("warm-up", "e")
    client.flush(30)
    emulator.client.set_latency(0.3)  # ten requests, one after the other: about 3 s
    try:
        for i in range(EVENTS):
            client.track("u", "e", {"i": i})
        closing = time.monotonic()
        client.close(20)
    finally:
        emulator.client.set_latency(0)
    during = sorted(t for t in arrivals.times if t >= closing)
    assert len(during) == EVENTS
    # Spread over the close as the requests were answered; all at its end before.
    assert during[-1] - during[0] > 1.5, during[-1] - during[0]
