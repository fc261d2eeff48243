"""The owner's ``flush(timeout)`` and ``close(timeout)`` return what the sender did not deliver.

The transport contract: ``flush`` returns the messages that could not be delivered in time,
never fewer; ``close`` returns what could not be delivered. The sender's inner transport
(``buffered_http``) keeps what its flush did not deliver queued, and gives up on what its
close did not (reporting it FAILED): both used to stay in the sender, and the owner returned
nothing, as if all had been delivered. The owner's flush also gave the sender's inner flush
``shutdown_timeout``, not the caller's timeout.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from mp_workers import config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.messages import Event, Message

pytestmark = pytest.mark.integration

EVENTS = 10


def insert_ids(messages: Sequence[Message]) -> set[str | None]:
    return {message.insert_id if isinstance(message, Event) else None for message in messages}


def track_some(client: Any, events: int) -> None:
    for i in range(events):
        client.track("u", "Held", {"i": i, "$insert_id": f"held-{i}"})


def test_owner_flush_returns_what_the_sender_did_not_deliver_within_the_callers_timeout(
    emulator: EmulatorProcess,
) -> None:
    # shutdown_timeout far below the caller's timeout: the sender's inner flush used it.
    client, counter = observed_client(config_for(emulator.base_url, shutdown_timeout=1.0))
    client.pipeline.build_all()
    emulator.client.stall()
    try:
        track_some(client, EVENTS)
        started = time.monotonic()
        left = client.flush(timeout=8.0)
        took = time.monotonic() - started
    finally:
        emulator.client.release()

    assert insert_ids(left) == {f"held-{i}" for i in range(EVENTS)}, "flush claimed delivery"
    assert len(left) == EVENTS
    # The sender flushed for the caller's time (less its margin to answer), not 1 s.
    assert 5.0 < took < 8.0 + 5.0, f"flush(timeout=8) took {took:.1f}s"
    # Still queued in the sender, as buffered_http's flush leaves them: delivered now.
    assert client.flush(timeout=30) == []
    assert len(set(emulator.client.insert_ids("track"))) == EVENTS
    client.close(timeout=30)
    assert counter.by_status == {"accepted": EVENTS}


def test_owner_close_returns_what_the_sender_gave_up_on(emulator: EmulatorProcess) -> None:
    client, counter = observed_client(config_for(emulator.base_url, batch_size=50))
    client.pipeline.build_all()
    transport: Any = client.pipeline.transport("default")
    emulator.client.stall()
    try:
        track_some(client, 200)
        started = time.monotonic()
        left = client.close(timeout=4.0)
        took = time.monotonic() - started
    finally:
        emulator.client.release()

    assert took < 4.0 + 3.0, f"close(timeout=4) took {took:.1f}s"
    assert transport.supervisor.process.exitcode == 0
    # Every record is reported FAILED (as before) and returned (it was not).
    assert counter.by_status == {"failed": 200}
    assert insert_ids(left) == {f"held-{i}" for i in range(200)}
    assert len(left) == 200
