"""How ``SentMessages`` traces a report back to its item.

A report usually carries the very object sent: that is traced by identity alone, without reading
its ``$insert_id`` (a computed property, read four times a message, it took a third of the time
``send`` spends on a large file). A copy is traced by what it carries: its ``$insert_id``, or,
for a profile update, which has none, its endpoint and JSON (a multiprocessing_queue's reports
carry copies decoded from that JSON).
"""

from __future__ import annotations

import time

import pytest

from mixpanel_core.commands.confirmed import SentMessages
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event, Message, PeopleUpdate, message_from_json

from .conftest import TOKEN


def _event(insert_id: str) -> Event:
    properties = {"token": TOKEN, "distinct_id": "u1", "time": time.time(), "$insert_id": insert_id}
    return Event(freeze({"event": "e", "properties": properties}, "event"))


def _profile(distinct_id: str) -> PeopleUpdate:
    return PeopleUpdate(freeze({"$token": TOKEN, "$distinct_id": distinct_id, "$set": {}}, "p"))


def _decoded(message: Message) -> Message:
    """The copy a multiprocessing_queue report carries."""
    return message_from_json(message.endpoint, message.json())


def test_the_very_objects_sent_are_traced_without_reading_their_insert_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[object] = []
    insert_id = Event.insert_id

    def counted(self: Event) -> str | None:
        reads.append(self)
        return insert_id.__get__(self)

    monkeypatch.setattr(Event, "insert_id", property(counted))
    messages = [_event(f"id-{n}") for n in range(100)]
    sent: SentMessages[int] = SentMessages()
    for index, message in enumerate(messages):
        sent.add(message, index)
    # Reported by two transports, each once.
    for transport in ("a", "b"):
        assert [sent.position_of(m, transport) for m in messages] == list(range(100))

    assert reads == []


def test_a_decoded_copy_of_a_profile_update_is_traced_by_its_json_each_item_once() -> None:
    first, second, other = _profile("p1"), _profile("p1"), _profile("p2")
    sent: SentMessages[str] = SentMessages()
    sent.add(first, "first")
    sent.add(other, "other")
    sent.add(second, "second")  # the same record twice in a file

    copies = [_decoded(m) for m in (other, first, second)]
    assert [sent.item_of(m, "workers") for m in copies] == ["other", "first", "second"]
    assert sent.item_of(_decoded(first), "workers") is None  # each item once per transport
    # Another transport's reports are their own.
    assert [sent.item_of(m, "mem") for m in (first, second, other)] == ["first", "second", "other"]


def test_a_copy_of_an_event_is_still_traced_by_its_insert_id() -> None:
    message = _event("id-1")
    sent: SentMessages[str] = SentMessages()
    sent.add(message, "item")
    enriched = _event("id-1")  # an enricher's new object, with a new time
    assert sent.item_of(enriched) == "item"
    assert sent.item_of(message) is None
