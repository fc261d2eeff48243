"""``buffered_http``: a take ``close`` gave up on before its first request was sent.

``close`` runs out of time while the thread is cutting a take into requests (a large take, a
loaded machine): the thread then starts none of them, reports the take FAILED ("close() timed
out first"), and ``close`` returns it with the rest it gave up on, so that the caller knows of
every record it may send again. A mutant whose thread reported the take but did not hand it to
``close`` (``close`` returned nothing) survived every other test.
"""

from __future__ import annotations

import threading

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import WireFormat
from mixpanel_core.messages import Endpoint

from .test_buffered_http import make_event, transport_for

pytestmark = pytest.mark.integration


def test_close_returns_a_take_it_stopped_before_its_first_request(
    mixpanel_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports: list[DeliveryReport] = []
    transport = transport_for(mixpanel_emulator, reports)
    sender = transport.sender
    loop = sender._loop
    cutting = threading.Event()
    wire_format = sender.client.wire_format

    def cut_until_close_gives_up(endpoint: Endpoint) -> WireFormat:
        # The thread has taken the record and is cutting its requests; it goes on only once
        # close's flush has run out of time.
        cutting.set()
        assert loop.abort.wait(30), "close never gave up on the take"
        return wire_format(endpoint)

    monkeypatch.setattr(sender.client, "wire_format", cut_until_close_gives_up)
    message = make_event("cut", 1)
    transport.send(message)
    assert cutting.wait(10), "the sender never took the record"
    returned = transport.close(0.2)
    thread = sender._thread
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()
    assert [m.insert_id for m in returned] == [message.insert_id]
    failed = [r for r in reports if r.status is DeliveryStatus.FAILED]
    assert [r.message.insert_id for r in failed if r.message is not None] == [message.insert_id]
    assert len(reports) == 1, reports
    assert mixpanel_emulator.client.stats()["requests"].get("track", {}) == {}
