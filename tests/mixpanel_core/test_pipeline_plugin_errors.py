"""A plugin that raises, or answers what its hook cannot take, is a PluginError naming it.

What validators return stays a ValidationError; what a hook implementation raises, our own
errors included, is its plugin's failure. Documented router errors keep their types and now
name the router.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from mixpanel_core import (
    ConfigError,
    Event,
    Message,
    Mixpanel,
    Pipeline,
    PluginError,
    TransportError,
    ValidationError,
    hookimpl,
)
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import NotJSONError, Problem
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.testing import MemoryTransport

from .test_core_audit import Answer


def client_with(
    name: str, plugin: object, on_invalid: str = "raise"
) -> tuple[Mixpanel, MemoryTransport]:
    transport = MemoryTransport()
    config = config_from_mapping({"pipeline": {"on_invalid": on_invalid}})
    pipeline = Pipeline([(name, plugin)], {"default": transport}, config)
    return Mixpanel("tok", pipeline=pipeline), transport


class AddsNaN:
    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Message | None:
        if isinstance(message, Event):
            return message.with_properties({"score": math.nan})
        return None


@pytest.mark.parametrize("on_invalid", ["raise", "drop"])
def test_an_enricher_raising_not_json_error_is_a_plugin_error_naming_it(on_invalid: str) -> None:
    # The NotJSONError went through unchanged, not naming the plugin (and escaped "drop").
    client, transport = client_with("scorer", AddsNaN(), on_invalid)
    with pytest.raises(PluginError, match=r"properties\.score: nan") as caught:
        client.track("user-1", "Ev")
    assert (caught.value.plugin, caught.value.hook) == ("scorer", "mixpanel_enrich")
    assert isinstance(caught.value.__cause__, NotJSONError)
    assert transport.messages == []


def raising(hook: str, error: Exception) -> object:
    """A plugin whose ``hook`` implementation raises ``error``."""

    class Raises:
        @hookimpl(specname=hook)
        def implementation(self, message: Message) -> Any:
            raise error

    return Raises()


@pytest.mark.parametrize("hook", ["mixpanel_validate", "mixpanel_enrich", "mixpanel_route"])
@pytest.mark.parametrize(
    "error",
    [
        ValidationError([Problem("event", "raised, not returned")]),
        TransportError("a plugin's own transport trouble"),
        KeyError("boom"),
    ],
    ids=["ValidationError", "TransportError", "KeyError"],
)
def test_whatever_a_hook_implementation_raises_is_a_plugin_error_naming_it(
    hook: str, error: Exception
) -> None:
    client, transport = client_with("mine", raising(hook, error))
    with pytest.raises(PluginError) as caught:
        client.track("user-1", "Ev")
    assert (caught.value.plugin, caught.value.hook) == ("mine", hook)
    assert caught.value.__cause__ is error
    assert transport.messages == []


def test_pipeline_problems_reports_a_raising_validator_as_a_plugin_error() -> None:
    # The forwarder validates through Pipeline.problems: the same rule holds there.
    error = NotJSONError([Problem("properties.n", "raised")])
    pipeline = Pipeline([("mine", raising("mixpanel_validate", error))], {"d": MemoryTransport()})
    with pytest.raises(PluginError) as caught:
        pipeline.problems(Event(FrozenDict(event="E", properties=FrozenDict())))
    assert caught.value.__cause__ is error


def test_problems_a_validator_returns_are_still_a_validation_error() -> None:
    class Refuses:
        @hookimpl
        def mixpanel_validate(self, message: Message) -> list[Problem]:
            return [Problem("event", "refused")]

    client, transport = client_with("refuses", Refuses())
    with pytest.raises(ValidationError, match="event: refused") as caught:
        client.track("user-1", "Ev")
    assert not isinstance(caught.value, PluginError)
    assert transport.messages == []


@pytest.mark.parametrize(
    "answer",
    [{"default": 1}, {"record": "dict"}, "a string", 5],
    ids=["dict", "record", "str", "int"],
)
def test_an_enricher_returning_what_is_not_a_message_is_a_plugin_error(answer: object) -> None:
    # A dict was kept by the memory transport, and an HTTP transport failed on it with
    # AttributeError, naming no plugin.
    class ReturnsRecord:
        @hookimpl
        def mixpanel_enrich(self, message: Message) -> object:
            return answer

    client, transport = client_with("tenant", ReturnsRecord())
    with pytest.raises(PluginError) as caught:
        client.track("user-1", "Ev")
    assert (caught.value.plugin, caught.value.hook) == ("tenant", "mixpanel_enrich")
    assert f"object of type {type(answer).__name__}, not a Message" in str(caught.value)
    assert transport.messages == []


@pytest.mark.parametrize(
    "answer",
    [5, iter(["default"]), {"default": 1}, {"default"}, ["default", 5], ("default", None)],
    ids=["int", "iterator", "dict", "set", "list with an int", "tuple with None"],
)
def test_a_router_answer_that_is_not_a_list_of_names_is_a_plugin_error(answer: object) -> None:
    # 5 and the iterator were a bare TypeError, the dict was accepted (its keys taken as
    # names), a non-string name a ConfigError for a transport called 5.
    client, transport = client_with("my_router", Answer(answer))
    with pytest.raises(PluginError) as caught:
        client.track("user-1", "Ev")
    assert (caught.value.plugin, caught.value.hook) == ("my_router", "mixpanel_route")
    assert f"of type {type(answer).__name__}" in str(caught.value)
    assert transport.messages == []


@pytest.mark.parametrize(
    ("answer", "error", "rule"),
    [
        (["nope"], ConfigError, r"transports\.nope: not configured"),
        ([], TransportError, "an empty list of transports"),
        ("default", TransportError, "the string 'default'"),
        (["default", "default"], TransportError, "a transport more than once"),
    ],
    ids=["unknown", "empty", "string", "twice"],
)
def test_a_router_answer_refused_keeps_its_documented_error_and_names_the_router(
    answer: object, error: type[Exception], rule: str
) -> None:
    # docs/hooks.md promises these types; none of them said which plugin answered.
    client, transport = client_with("my_router", Answer(answer))
    with pytest.raises(error, match=rule) as caught:
        client.track("user-1", "Ev")
    assert "plugin 'my_router'" in str(caught.value)
    assert transport.messages == []


def test_a_router_raising_config_error_reaches_the_caller_as_it_is() -> None:
    # Documented: the built-in router raises it when no route takes a message.
    error = ConfigError("routes: no route takes event messages")
    client, _ = client_with("my_router", raising("mixpanel_route", error))
    with pytest.raises(ConfigError) as caught:
        client.track("user-1", "Ev")
    assert caught.value is error


def test_a_router_answering_a_tuple_is_checked_once_then_served_from_the_cache() -> None:
    a, b = MemoryTransport(), MemoryTransport()
    pipeline = Pipeline([("r", Answer(("a", "b")))], {"a": a, "b": b})
    client = Mixpanel("tok", pipeline=pipeline)
    client.track("user-1", "One")
    client.track("user-1", "Two")
    assert [m.record["event"] for m in a.messages] == ["One", "Two"]
    assert [m.record["event"] for m in b.messages] == ["One", "Two"]
