"""What a validator answers, and what a transport answers ``flush``/``close``, is checked.

A validator's answer was read as problems without a look: the string ``"properties.x: bad"``
made a ValidationError of one "problem" per character, a dict or a list of strings problems
without fields, ``False`` a pass, and under ``on_invalid = "drop"`` every message was dropped
for the plugin's fault. A transport's ``flush`` returning ``None`` failed as "'NoneType' object
is not iterable", naming nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from mixpanel_core import Event, Message, Mixpanel, Pipeline, PluginError, TransportError, hookimpl
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import Problem, ValidationError
from mixpanel_core.testing import MemoryTransport


class Answers:
    """A validator answering ``answer`` for every message."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    @hookimpl
    def mixpanel_validate(self, message: Message) -> object:
        return self.answer


def client_with(answer: object, on_invalid: str) -> tuple[Mixpanel, MemoryTransport]:
    transport = MemoryTransport()
    config = config_from_mapping({"pipeline": {"on_invalid": on_invalid}})
    pipeline = Pipeline([("answers", Answers(answer))], {"default": transport}, config)
    return Mixpanel("tok", pipeline=pipeline), transport


WRONG = {
    "a string": "properties.x: bad",
    "bytes": b"properties.x: bad",
    "a tuple of strings": ("properties.x", "bad"),
    "a dict": {"properties.x": "bad"},
    "a list of strings": ["properties.x: bad"],
    "problems and a string": [Problem("properties.x", "bad"), "more"],
    "True": True,
    "False": False,
    "an empty string": "",
    "an empty dict": {},
    "a number": 0,
}


@pytest.mark.parametrize("on_invalid", ["raise", "drop"])
@pytest.mark.parametrize("answer", list(WRONG.values()), ids=list(WRONG))
def test_mixpanel_validate_answering_what_is_not_problems_is_a_plugin_error(
    answer: object, on_invalid: str
) -> None:
    client, transport = client_with(answer, on_invalid)
    with pytest.raises(PluginError) as caught:
        client.track("user-1", "E")
    assert (caught.value.plugin, caught.value.hook) == ("answers", "mixpanel_validate")
    assert isinstance(caught.value.__cause__, TypeError)
    assert "Problem(field, rule)" in str(caught.value)
    assert transport.messages == []


def test_the_plugin_error_names_the_type_answered() -> None:
    client, _ = client_with({"properties.x": "bad"}, "raise")
    with pytest.raises(PluginError, match=r"of type dict"):
        client.track("user-1", "E")
    client, _ = client_with(["properties.x: bad"], "raise")
    with pytest.raises(PluginError, match=r"a list holding 'properties.x: bad', of type str"):
        client.track("user-1", "E")


def test_problems_checks_the_answers_too() -> None:
    # What the forwarder and the commands call.
    transport = MemoryTransport()
    Mixpanel("tok", transport).track("user-1", "E")
    client, _ = client_with("properties.x: bad", "raise")
    with pytest.raises(PluginError, match="mixpanel_validate"):
        client.pipeline.problems(transport.messages[0])


class AddsX:
    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Message | None:
        return message.with_properties({"x": 1}) if isinstance(message, Event) else None


class RefusesXWrongly:
    """Answers a string, only for the enriched message: the second validation checks it."""

    @hookimpl
    def mixpanel_validate(self, message: Message) -> object:
        return "properties.x: bad" if "x" in message.record["properties"] else None


@pytest.mark.parametrize("on_invalid", ["raise", "drop"])
def test_the_second_validation_of_an_enriched_message_checks_the_answers(on_invalid: str) -> None:
    transport = MemoryTransport()
    config = config_from_mapping({"pipeline": {"on_invalid": on_invalid}})
    plugins = [("refuses", RefusesXWrongly()), ("adds", AddsX())]
    client = Mixpanel("tok", pipeline=Pipeline(plugins, {"default": transport}, config))
    with pytest.raises(PluginError) as caught:
        client.track("user-1", "E")
    assert caught.value.plugin == "refuses"
    assert transport.messages == []


def problems() -> Iterator[Problem]:
    yield Problem("properties.x", "bad")


RIGHT: dict[str, object] = {
    "a list": [Problem("properties.x", "bad")],
    "a tuple": (Problem("properties.x", "bad"),),
    "a generator": problems(),
}


@pytest.mark.parametrize("answer", list(RIGHT.values()), ids=list(RIGHT))
def test_problems_in_any_iterable_are_a_verdict(answer: object) -> None:
    client, transport = client_with(answer, "raise")
    with pytest.raises(ValidationError) as caught:
        client.track("user-1", "E")
    assert caught.value.problems == (Problem("properties.x", "bad"),)
    assert transport.messages == []


@pytest.mark.parametrize("answer", [None, [], ()], ids=["None", "[]", "()"])
def test_no_problems_pass(answer: object) -> None:
    client, transport = client_with(answer, "raise")
    client.track("user-1", "E")
    assert len(transport.messages) == 1


class Holds:
    """A transport whose ``flush`` and ``close`` answer ``answer``."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.closed = False

    def send(self, message: Message) -> None:
        pass

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        return self.answer  # type: ignore[return-value]

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        self.closed = True
        return self.answer  # type: ignore[return-value]


@pytest.mark.parametrize("answer", [None, "held", {"a": 1}, ["not a message"], 3], ids=repr)
def test_a_transport_answering_flush_or_close_with_what_is_not_messages_is_named(
    answer: object,
) -> None:
    memory, odd = MemoryTransport(), Holds(answer)
    pipeline = Pipeline([], {"default": memory, "odd": odd})
    pipeline.build_all()
    with pytest.raises(TransportError, match=r"transport 'odd' answered flush\(\)"):
        pipeline.flush()
    with pytest.raises(TransportError, match=r"transport 'odd' answered close\(\)"):
        pipeline.close()
    # The other transport was closed all the same.
    assert memory.closed
    assert odd.closed


def test_a_transport_answering_a_list_or_tuple_of_messages_is_taken() -> None:
    client, transport = client_with(None, "raise")
    client.track("user-1", "E")
    held = transport.messages[0]
    for answer in ([held], (held,), ()):
        pipeline = Pipeline([], {"default": Holds(answer)})
        pipeline.build_all()
        assert pipeline.flush() == list(answer)
        assert pipeline.close() == list(answer)
