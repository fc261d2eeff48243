"""What is sent is what was checked: a message an enricher changed is validated again.

Each test through a real pipeline, with real plugins, into the memory transport.
"""

from __future__ import annotations

import pytest

from mixpanel_core import (
    DeliveryStatus,
    Event,
    Message,
    Mixpanel,
    Pipeline,
    Problem,
    ValidationError,
    hookimpl,
)
from mixpanel_core.config import config_from_mapping
from mixpanel_core.testing import MemoryTransport, ReportCollector

SUPER_PROPERTIES = {f"s{i}": i for i in range(20)}
# With the six the client adds (token, distinct_id, time, ...), 246: valid on its own.
CALLERS_PROPERTIES = {f"p{i}": i for i in range(240)}


def limits_and_super_properties(
    on_invalid: str,
) -> tuple[Mixpanel, MemoryTransport, ReportCollector]:
    config = config_from_mapping(
        {
            "pipeline": {"on_invalid": on_invalid},
            "plugins": {
                "enabled": ["mixpanel_limits", "super_properties"],
                "super_properties": {"properties": SUPER_PROPERTIES},
            },
        }
    )
    transport, reports = MemoryTransport(), ReportCollector()
    pipeline = Pipeline.from_config(config, {"default": transport}, [("reports", reports)])
    return Mixpanel("tok", pipeline=pipeline), transport, reports


def test_super_properties_taking_an_event_past_255_properties_are_refused() -> None:
    # It was sent with 266 properties, which Mixpanel refuses: the validators never saw what
    # the enricher made.
    client, transport, _ = limits_and_super_properties("raise")
    with pytest.raises(ValidationError) as caught:
        client.track("user-1", "Ev", CALLERS_PROPERTIES)
    assert [(p.field, p.rule) for p in caught.value.problems] == [
        ("properties", "has 266 properties; must be fewer than 255")
    ]
    assert "invalid event" in str(caught.value)
    assert transport.messages == []


def test_an_enriched_message_refused_under_drop_is_reported_with_what_was_refused() -> None:
    client, transport, reports = limits_and_super_properties("drop")
    client.track("user-1", "Ev", CALLERS_PROPERTIES)
    client.track("user-1", "Fine", {"plan": "pro"})
    assert [m.record["event"] for m in transport.messages] == ["Fine"]
    dropped = [r for r in reports.reports if r.status is DeliveryStatus.DROPPED]
    assert len(dropped) == 1
    assert dropped[0].transport == "pipeline"
    assert "has 266 properties" in str(dropped[0].reason)
    assert dropped[0].message is not None
    assert len(dropped[0].message.record["properties"]) == 266  # the enriched message


class Counts:
    """A validator that keeps every message it is given."""

    def __init__(self) -> None:
        self.seen: list[Message] = []

    @hookimpl
    def mixpanel_validate(self, message: Message) -> None:
        self.seen.append(message)


class AddsRegion:
    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Message | None:
        if isinstance(message, Event):
            return message.with_properties({"region": "eu"})
        return None


class ReturnsWhatItGets:
    @hookimpl
    def mixpanel_enrich(self, message: Message) -> Message:
        return message


class PassesOn:
    @hookimpl
    def mixpanel_enrich(self, message: Message) -> None:
        return None


def test_validators_see_the_enriched_message_after_the_enrichers() -> None:
    counts, transport = Counts(), MemoryTransport()
    pipeline = Pipeline([("counts", counts), ("region", AddsRegion())], {"default": transport})
    Mixpanel("tok", pipeline=pipeline).track("user-1", "Ev")
    assert ["region" in m.record["properties"] for m in counts.seen] == [False, True]
    assert counts.seen[1] is transport.messages[0]


@pytest.mark.parametrize("enricher", [PassesOn(), ReturnsWhatItGets()], ids=["None", "same"])
def test_a_message_no_enricher_changed_is_validated_once(enricher: object) -> None:
    # The hot path: a second validation costs as much as the first.
    counts, transport = Counts(), MemoryTransport()
    pipeline = Pipeline([("counts", counts), ("enricher", enricher)], {"default": transport})
    Mixpanel("tok", pipeline=pipeline).track("user-1", "Ev")
    assert len(counts.seen) == 1
    assert len(transport.messages) == 1


def test_a_problem_of_an_enriched_message_names_its_field_and_sends_nothing() -> None:
    class NoRegion:
        @hookimpl
        def mixpanel_validate(self, message: Message) -> list[Problem]:
            if "region" in message.record.get("properties", {}):
                return [Problem("properties.region", "is not allowed")]
            return []

    transport = MemoryTransport()
    pipeline = Pipeline([("rule", NoRegion()), ("region", AddsRegion())], {"default": transport})
    with pytest.raises(ValidationError, match=r"properties\.region: is not allowed"):
        Mixpanel("tok", pipeline=pipeline).track("user-1", "Ev")
    assert transport.messages == []
