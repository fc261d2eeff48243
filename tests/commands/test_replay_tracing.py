"""How ``replay-dead-letters`` traces a delivery report back to the dead letter it came from:
each letter once, by the message sent for it, then by ``$insert_id``."""

from __future__ import annotations

import time

from mixpanel_core.commands.dead_letter_sources import Letter
from mixpanel_core.commands.replay import _SentLetters
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event, PeopleUpdate

from .conftest import TOKEN


def _event(insert_id: str, who: str = "u1") -> Event:
    properties = {"token": TOKEN, "distinct_id": who, "time": time.time(), "$insert_id": insert_id}
    return Event(freeze({"event": "e", "properties": properties}, "event"))


def _letters(message: object, count: int) -> list[Letter]:
    return [Letter("dead.jsonl", index, message) for index in range(count)]  # type: ignore[arg-type]


def test_one_message_object_sent_for_two_letters_is_traced_to_each_in_turn() -> None:
    # A fix-up plugin may hand back one object for equal records: the second report went to
    # the second letter too, and the first letter got no rejected line of its own.
    update = PeopleUpdate(freeze({"$token": TOKEN, "$distinct_id": "u1", "$add": {"n": 1}}, "p"))
    first, second = _letters(update, 2)
    sent = _SentLetters()
    sent.add(update, first)
    sent.add(update, second)
    assert sent.letter_of(update) is first
    assert sent.letter_of(update) is second
    assert sent.letter_of(update) is None


def test_an_enriched_message_is_traced_by_insert_id_each_letter_once() -> None:
    # Two letters of one record dead-lettered twice share an $insert_id; the reports carry
    # messages an enricher made, so only the id can trace them: one letter each, in order.
    sent_first, sent_second = _event("same-id"), _event("same-id", "u2")
    first, second = _letters(sent_first, 2)
    sent = _SentLetters()
    sent.add(sent_first, first)
    sent.add(sent_second, second)
    enriched = [_event("same-id"), _event("same-id", "u2")]
    assert [sent.letter_of(m) for m in enriched] == [first, second]
    # Traced once already: found by neither its message nor its id again.
    assert sent.letter_of(sent_first) is None


def test_a_message_traced_by_its_id_is_not_traced_again_by_identity() -> None:
    message = _event("id-1")
    [letter] = _letters(message, 1)
    sent = _SentLetters()
    sent.add(message, letter)
    assert sent.letter_of(_event("id-1")) is letter
    assert sent.letter_of(message) is None
