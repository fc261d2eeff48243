"""A batch goes when it is full or when ``linger`` has passed, whichever comes first.

Neither is seen by a test that calls ``flush()`` (it hurries the sender), so these wait for
the emulator alone. Two mutants survived every test: one whose queue woke the lingering
sender only for the first record, not when a full batch was queued (a full batch waited out
the whole linger; the same for records given as JSON, several at once), and one that lingered
twice as long as ``linger`` says.
"""

from __future__ import annotations

import time

import pytest

from mixpanel_core.emulator import Emulator

from .test_buffered_http import make_event, transport_for

pytestmark = pytest.mark.integration


def test_a_full_batch_is_sent_without_waiting_out_the_linger(mixpanel_emulator: Emulator) -> None:
    transport = transport_for(mixpanel_emulator, linger=120.0, max_batch_records=5)
    transport.send(make_event("full", 0))
    # Long enough for the woken sender to be lingering for the rest of its batch; were it
    # not yet, the full batch would be there when it looks, and this test would prove less,
    # never fail.
    time.sleep(1.0)
    for i in range(1, 5):
        transport.send(make_event("full", i))
    # Far below the 120 s linger: only the fifth record's wake-up sends the batch this soon.
    mixpanel_emulator.client.wait_for_records(5, "track", timeout=30)
    assert mixpanel_emulator.client.insert_ids("track") == [
        make_event("full", i).insert_id for i in range(5)
    ]
    assert transport.close(30) == []


LINGER = 3.0


def test_a_partial_batch_is_sent_once_linger_has_passed_not_before_nor_long_after(
    mixpanel_emulator: Emulator,
) -> None:
    transport = transport_for(mixpanel_emulator, linger=LINGER)
    started = time.monotonic()
    transport.send(make_event("linger", 0))
    mixpanel_emulator.client.wait_for_records(1, "track", timeout=30)
    waited = time.monotonic() - started
    # Generous on a loaded machine, yet apart: twice the linger would be 6 s.
    assert LINGER - 0.1 <= waited < LINGER + 2.0, waited
    assert transport.close(30) == []


def test_records_given_as_json_that_fill_a_batch_are_sent_without_waiting_out_the_linger(
    mixpanel_emulator: Emulator,
) -> None:
    """The same through ``send_records`` (the multiprocessing_queue sender's relay), whose
    records go in several at once: the batch that reaches the limit wakes the sender (a
    mutant waking it only for records put into an empty queue survived every test)."""
    transport = transport_for(mixpanel_emulator, linger=120.0, max_batch_records=5)
    records = [make_event("json", i).json() for i in range(5)]
    transport.send_records("track", records[:1])
    time.sleep(1.0)  # as above: the sender is lingering for the rest of its batch
    transport.send_records("track", records[1:])
    mixpanel_emulator.client.wait_for_records(5, "track", timeout=30)
    assert mixpanel_emulator.client.insert_ids("track") == [
        make_event("json", i).insert_id for i in range(5)
    ]
    assert transport.close(30) == []
