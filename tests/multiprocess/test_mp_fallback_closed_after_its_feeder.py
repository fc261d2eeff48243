"""The client's ``close()`` closes a ``multiprocessing_queue``'s fallback after the transport
that feeds it, also one built during that close.

With the sender dead, the producer hands what it holds to the fallback when it closes. The
client closed the transports it had built before the close began, the last built first: a
fallback built during the close (the first batch to find the sender dead) was never closed,
so ``close()`` returned ``[]`` with its messages still queued in it, left to an exit hook; and
one built earlier was closed before the transport that then handed it the last batch.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from mp_workers import TOKEN, ReportCounter

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.pipeline import Pipeline

pytestmark = pytest.mark.integration


def client_with_fallback(emulator: EmulatorProcess) -> tuple[Mixpanel, ReportCounter]:
    """Events go to ``default``, which queues them to a sender: a partial batch waits in the
    producer until closed. Profile updates go to ``later``, also ``default``'s fallback, which
    sends only when flushed or closed."""
    config = config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": emulator.base_url},
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "direct",
                    "fallback": "later",
                    "linger": 60.0,
                },
                "direct": {"type": "buffered_http", "linger": 0.02},
                "later": {"type": "buffered_http", "linger": 60.0},
            },
            "routes": [
                {"transport": "later", "kinds": ["people"]},
                {"transport": "default"},
            ],
        }
    )
    counter = ReportCounter()
    pipeline = Pipeline.from_config(config, extra_plugins=[("counter", counter)])
    return Mixpanel(TOKEN, config=config, pipeline=pipeline), counter


def kill_the_sender(client: Mixpanel, emulator: EmulatorProcess) -> None:
    client.track("u-0", "Before")
    assert client.flush(timeout=20) == []
    emulator.wait_for_records(1, "track", timeout=30)
    transport: Any = client.pipeline.transport("default")
    process = transport.supervisor.process
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    assert not process.is_alive()


def built(client: Mixpanel) -> list[str]:
    return list(client.pipeline._transports.built)


@pytest.mark.parametrize("fallback_built", ["during the close", "before the close"])
def test_the_fallback_delivers_what_the_producer_hands_it_at_close(
    fallback_built: str, emulator: EmulatorProcess
) -> None:
    client, counter = client_with_fallback(emulator)
    kill_the_sender(client, emulator)
    profiles = 0
    if fallback_built == "before the close":
        client.people_set("u-9", {"plan": "pro"})  # builds "later", after "default"
        profiles = 1
    for i in range(5):
        client.track("u-1", "After", {"i": i})  # waiting in the producer's batch
    assert built(client) == ["default", "later"][: 1 + profiles]

    left = client.close(timeout=20)

    assert left == []
    assert built(client) == ["default", "later"]
    # Delivered within close(), not left to an exit hook.
    assert len(emulator.insert_ids("track")) == 1 + 5
    assert len(emulator.records("engage")) == profiles
    assert dict(counter.by_status) == {"accepted": 1 + 5 + profiles}
