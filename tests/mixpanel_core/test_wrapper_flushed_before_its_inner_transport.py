"""A wrapper transport that finds its inner one when it is built (``context.resolve``) hands
what it holds to that inner transport when flushed. The pipeline flushes (and closes) the
wrapper first and the inner transport after it, so what the wrapper handed over is delivered
by the same ``flush()``: the other way round it would sit in the inner transport, unsent,
while ``flush()`` returned nothing held."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from mixpanel_core import named_transports
from mixpanel_core.config import TransportConfig
from mixpanel_core.frozen import FrozenDict, freeze
from mixpanel_core.messages import Event, Message
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.transport import Transport, TransportContext


class Inner:
    """Holds what it is sent until flushed or closed, then counts it delivered."""

    def __init__(self) -> None:
        self.held: list[Message] = []
        self.delivered: list[Message] = []

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> Inner:
        return cls()

    def send(self, message: Message) -> None:
        self.held.append(message)

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        self.delivered += self.held
        self.held = []
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        return self.flush(timeout)


class Wrapper(Inner):
    """Holds what it is sent, and hands it to its inner transport when flushed or closed."""

    def __init__(self, inner: Transport) -> None:
        super().__init__()
        self.inner = inner

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> Wrapper:
        return cls(context.resolve(options["inner"]))

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        for message in self.held:
            self.inner.send(message)
        self.held = []
        return ()


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    types = {"wrapper": Wrapper, "holding": Inner}
    monkeypatch.setattr(named_transports, "load", lambda group, name, path: types[name])
    transports = {
        "default": TransportConfig("wrapper", FrozenDict(inner="inner")),
        "inner": TransportConfig("holding"),
    }
    return Pipeline(transports=transports)


@pytest.mark.parametrize("verb", ["flush", "close"])
def test_what_the_wrapper_hands_over_is_delivered_by_the_same_call(
    pipeline: Pipeline, verb: str
) -> None:
    for n in range(3):
        pipeline.submit(Event(freeze({"event": f"E{n}", "properties": {"distinct_id": "u"}}, "")))
    wrapper = pipeline.transport("default")
    assert isinstance(wrapper, Wrapper)
    inner = wrapper.inner
    assert isinstance(inner, Inner)

    assert getattr(pipeline, verb)() == []

    assert wrapper.held == []
    assert inner.held == []
    assert [m.record["event"] for m in inner.delivered] == ["E0", "E1", "E2"]
