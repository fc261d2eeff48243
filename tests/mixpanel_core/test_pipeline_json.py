"""A message that cannot be written as JSON is refused before any transport sees it.

Python writes no integer of more than 4,300 digits, and the client cannot see one when it
makes the message; the pipeline encodes every message before handing it on, and such a value
is a NotJSONError under ``[pipeline] on_invalid`` like NaN: never raised from a transport,
never half-sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import DeliveryStatus, Event, Message, Mixpanel, Pipeline, hookimpl
from mixpanel_core.config import (
    ALWAYS_ENABLED_PLUGINS,
    Config,
    PipelineSettings,
    RouteConfig,
    config_from_mapping,
)
from mixpanel_core.errors import NotJSONError
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.testing import MemoryTransport, ReportCollector

HUGE = 10**5000
RULE = "an integer of more than 4300 digits cannot be written"


class Encodes(MemoryTransport):
    """A memory transport that encodes what it takes, as the HTTP and Kafka ones do."""

    def send(self, message: Message) -> None:
        message.json()
        super().send(message)


def pipeline_to(
    transports: dict[str, object], on_invalid: str, enabled: list[str]
) -> tuple[Mixpanel, ReportCollector]:
    config = config_from_mapping(
        {"pipeline": {"on_invalid": on_invalid}, "plugins": {"enabled": enabled}}
    )
    reports = ReportCollector()
    pipeline = Pipeline.from_config(config, transports, [("reports", reports)])
    return Mixpanel("tok", pipeline=pipeline), reports


@pytest.mark.parametrize("enabled", [[], ["mixpanel_limits"]], ids=["no plugins", "limits"])
def test_an_integer_too_long_to_write_is_a_not_json_error_whatever_the_plugins(
    enabled: list[str],
) -> None:
    # Without plugins it was taken by the transport; with mixpanel_limits it was a plain
    # ValidationError, though docs/errors.md promises NotJSONError (also a TypeError).
    transport = MemoryTransport()
    client, _ = pipeline_to({"default": transport}, "raise", enabled)
    with pytest.raises(NotJSONError) as caught:
        client.track("user-1", "Ev", {"n": HUGE})
    assert isinstance(caught.value, TypeError)
    assert [(p.field, p.rule) for p in caught.value.problems] == [("properties.n", RULE)]
    assert str(caught.value).startswith("invalid event: ")
    assert transport.messages == []


def test_under_drop_an_integer_too_long_to_write_is_dropped_not_raised() -> None:
    # It raised in the caller from the transport, where NaN is dropped quietly.
    transport = Encodes()
    client, reports = pipeline_to({"default": transport}, "drop", [])
    client.track("user-1", "Ev", {"n": HUGE})
    client.people_set("user-1", {"n": HUGE})
    assert transport.messages == []
    assert [r.status for r in reports.reports] == [DeliveryStatus.DROPPED] * 2
    assert [r.transport for r in reports.reports] == ["pipeline"] * 2
    assert RULE in str(reports.reports[1].reason)


def test_an_integer_too_long_to_write_is_never_half_sent() -> None:
    # Routed to two transports, the first took it and the second refused it: PartialSendError.
    audit, direct = MemoryTransport(), Encodes()
    config = Config(
        pipeline=PipelineSettings(on_invalid="drop"),
        plugins=ALWAYS_ENABLED_PLUGINS,
        transports=FrozenDict({"audit": audit, "direct": direct}),
        routes=(RouteConfig(transport=("audit", "direct")),),
    )
    reports = ReportCollector()
    client = Mixpanel("tok", pipeline=Pipeline.from_config(config, None, [("reports", reports)]))
    client.track("user-1", "Ev", {"n": HUGE})
    assert audit.messages == direct.messages == []
    assert [r.status for r in reports.reports] == [DeliveryStatus.DROPPED]


def test_an_enricher_adding_an_integer_too_long_to_write_is_refused_like_the_callers() -> None:
    class AddsHuge:
        @hookimpl
        def mixpanel_enrich(self, message: Message) -> Message | None:
            if isinstance(message, Event):
                return message.with_properties({"n": HUGE})
            return None

    transport = MemoryTransport()
    pipeline = Pipeline([("huge", AddsHuge())], {"default": transport})
    with pytest.raises(NotJSONError, match=r"properties\.n: an integer of more than"):
        Mixpanel("tok", pipeline=pipeline).track("user-1", "Ev")
    assert transport.messages == []


def test_a_message_is_encoded_once_for_the_pipeline_the_validators_and_the_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The check costs nothing: the bytes it makes are those mixpanel_limits measures and the
    # transport sends.
    from mixpanel_core.wire import dumps

    calls: list[object] = []

    def counting(record: Any) -> bytes:
        calls.append(record)
        return dumps(record)

    monkeypatch.setattr("mixpanel_core.messages.dumps", counting)
    transport = Encodes()
    client, _ = pipeline_to({"default": transport}, "raise", ["mixpanel_limits"])
    client.track("user-1", "Ev", {"plan": "pro"})
    assert len(calls) == 1
    assert len(transport.messages) == 1
