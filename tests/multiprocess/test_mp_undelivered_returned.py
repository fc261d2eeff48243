"""The owner's ``flush(timeout)`` never claims delivery the sender has not made, and it keeps to
the caller's timeout.

The transport contract: ``flush`` returns the messages that could not be delivered in time, or
raises ``TransportError`` when they are held elsewhere and cannot be returned. The sender's
inner transport (``buffered_http``) keeps what its flush did not deliver queued in the sender
process: the owner used to return nothing, as if all had been delivered, and gave the inner
flush ``shutdown_timeout`` rather than the caller's timeout. What the sender gives up on at
``close`` is reported FAILED there, not returned.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from mp_workers import TOKEN, config_for, observed_client

from mixpanel_core.commands.confirmed import ConfirmedDelivery
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.errors import NotYetDeliveredError
from mixpanel_core.messages import message_from_record

pytestmark = pytest.mark.integration

EVENTS = 10


def track_some(client: Any, events: int) -> None:
    for i in range(events):
        client.track("u", "Held", {"i": i, "$insert_id": f"held-{i}"})


def test_owner_flush_says_how_many_the_sender_did_not_deliver_within_the_callers_timeout(
    emulator: EmulatorProcess,
) -> None:
    # shutdown_timeout far below the caller's timeout: the sender's inner flush used it.
    client, counter = observed_client(config_for(emulator.base_url, shutdown_timeout=1.0))
    client.pipeline.build_all()
    emulator.client.stall()
    try:
        track_some(client, EVENTS)
        started = time.monotonic()
        with pytest.raises(NotYetDeliveredError, match=rf"{EVENTS} record\(s\) were not yet"):
            client.flush(timeout=8.0)
        took = time.monotonic() - started
    finally:
        emulator.client.release()

    # The sender flushed for the caller's time (less its margin to answer), not 1 s.
    assert 5.0 < took < 8.0 + 5.0, f"flush(timeout=8) took {took:.1f}s"
    # Still queued in the sender, as buffered_http's flush leaves them: delivered now.
    assert client.flush(timeout=30) == []
    assert len(set(emulator.client.insert_ids("track"))) == EVENTS
    client.close(timeout=30)
    assert counter.by_status == {"accepted": EVENTS}


def test_owner_close_reports_what_the_sender_gave_up_on_failed(emulator: EmulatorProcess) -> None:
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
    # Held in the sender process, they are reported FAILED there rather than returned.
    assert counter.by_status == {"failed": 200}
    assert list(left) == []


def test_a_confirmed_delivery_waits_while_the_sender_still_delivers(
    emulator: EmulatorProcess,
) -> None:
    """The commands' ConfirmedDelivery flushes until every message is reported. The owner's
    flush raising NotYetDeliveredError (the sender still delivers, one second a request) must
    not end that wait: it counted 30 of 40 delivered events as undelivered, and a rerun of
    the command would have sent them again."""
    config = config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": emulator.base_url},
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "direct",
                    "batch_size": 5,
                    "shutdown_timeout": 3.0,
                },
                "direct": {"type": "buffered_http", "linger": 0.02, "max_batch_records": 5},
            },
        }
    )
    delivery = ConfirmedDelivery(config)
    try:
        emulator.client.set_latency(1.0)
        now = time.time() - 60
        for i in range(40):
            record = {
                "event": "e",
                "properties": {
                    "token": TOKEN,
                    "distinct_id": "u",
                    "time": now,
                    "$insert_id": f"c{i}",
                },
            }
            delivery.submit(message_from_record("track", record))
        outcome = delivery.confirm()
    finally:
        emulator.client.set_latency(0.0)
        delivery.close(10)
    assert (outcome.accepted, outcome.undelivered) == (40, 0), outcome
