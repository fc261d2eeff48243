"""``len()`` of a ``buffered_http`` sender counts the records being sent, not only the queued.

Its contract is "messages queued or being sent": a take is out of the queue while its request
is out. A mutant counting the queue alone (0 while a whole batch waits for Mixpanel's answer)
survived every test.
"""

from __future__ import annotations

import pytest

from mixpanel_core.emulator import Emulator

from .test_buffered_http import make_event, transport_for, wait_for_stalled_request

pytestmark = pytest.mark.integration


def test_records_whose_request_is_out_are_counted(mixpanel_emulator: Emulator) -> None:
    transport = transport_for(mixpanel_emulator, linger=0.0)
    mixpanel_emulator.client.stall()
    transport.send(make_event("in-flight", 0))
    wait_for_stalled_request(mixpanel_emulator)  # taken: in flight, no longer queued
    assert len(transport.sender) == transport.pending == 1
    transport.send(make_event("in-flight", 1))  # queued behind it
    assert len(transport.sender) == transport.pending == 2
    mixpanel_emulator.client.release()
    assert transport.flush(30) == []
    assert len(transport.sender) == transport.pending == 0
    assert transport.close(30) == []
