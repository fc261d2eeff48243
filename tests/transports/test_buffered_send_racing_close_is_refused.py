"""A ``send`` that passed the closed check just before ``close`` ran is refused, not queued.

``submit`` checks that the transport is open before it puts the record in the queue; a
``close`` can run in between. The queue itself refuses once closed, so that producer gets a
``TransportError`` and still holds its record. Let in, the record sat in a queue whose thread
had ended and whose final drain had run: never sent, never reported, never returned (a mutant
whose fast ``put`` ignored the queue's close survived every test).
"""

from __future__ import annotations

import threading

import pytest

from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import TransportError
from mixpanel_core.sender_records import held_bytes

from .test_buffered_http import make_event, transport_for

pytestmark = pytest.mark.integration


def test_a_send_caught_between_its_check_and_its_put_by_close_is_refused(
    mixpanel_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports: list[DeliveryReport] = []
    transport = transport_for(mixpanel_emulator, reports)
    transport.send(make_event("before", 0))  # the sender thread runs: no start in the racer
    assert transport.flush(30) == []

    # ``held_bytes`` is what ``submit`` calls between its check and the queue's ``put``:
    # holding the racer there makes the race happen every time, not once in a while.
    in_submit = threading.Event()
    closed = threading.Event()

    def held_until_closed(data: bytes, with_message: bool) -> int:
        in_submit.set()
        assert closed.wait(30), "close() never finished"
        return held_bytes(data, with_message)

    monkeypatch.setattr("mixpanel_core.buffering.held_bytes", held_until_closed)
    racer = make_event("racer", 0)
    outcome: list[BaseException | None] = []

    def send() -> None:
        try:
            transport.send(racer)
        except BaseException as error:  # what the producer was told, read below
            outcome.append(error)
        else:
            outcome.append(None)

    producer = threading.Thread(target=send)
    producer.start()
    assert in_submit.wait(30), "the racer never reached the queue"
    assert transport.close(30) == []
    closed.set()
    producer.join(30)
    assert not producer.is_alive()

    (told,) = outcome
    assert isinstance(told, TransportError), "a send after close() was taken silently"
    assert "closed" in str(told)
    # Refused, it is the caller's still: nothing of it was reported, sent or left queued.
    assert [r.message for r in reports if r.message is racer] == []
    assert mixpanel_emulator.client.insert_ids("track") == [make_event("before", 0).insert_id]
    assert len(transport.sender) == 0
