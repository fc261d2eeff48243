"""A wrapper transport whose inner transport leads back to itself (``a`` wraps ``b``, which
wraps ``a``) is a configuration error naming the transport, raised at its first use: not a
``RecursionError`` deep in the building, nor a transport half built."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from mixpanel_core import named_transports
from mixpanel_core.config import TransportConfig
from mixpanel_core.errors import ConfigError
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.messages import Message
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.transport import Transport, TransportContext


class Wrapper:
    """Finds its inner transport when it is built, as an ``inner = "..."`` wrapper does."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> Wrapper:
        return cls(context.resolve(options["inner"]))

    def send(self, message: Message) -> None:
        self.inner.send(message)

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        return ()


def test_a_loop_of_wrappers_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(named_transports, "load", lambda group, name, path: Wrapper)
    pipeline = Pipeline(
        transports={
            "a": TransportConfig("wrapper", FrozenDict(inner="b")),
            "b": TransportConfig("wrapper", FrozenDict(inner="a")),
        }
    )

    with pytest.raises(ConfigError, match=r"transports\.a: refers to itself"):
        pipeline.transport("a")
    # Nothing was kept half built: asked again, either says the same.
    for name in ("a", "b"):
        with pytest.raises(ConfigError, match=rf"transports\.{name}: refers to itself"):
            pipeline.transport(name)
