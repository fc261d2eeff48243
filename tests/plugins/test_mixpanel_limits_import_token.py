"""/import events need no token in them: the request is authenticated, and Mixpanel takes them.

A backfill file of /import records written without ``properties.token`` (Mixpanel's own
/import examples have none) must not be refused by the default validator; a /track event
without one still is, since the token is how /track knows the project.
"""

from __future__ import annotations

import time

import pytest

from mixpanel_core import ValidationError
from mixpanel_core.messages import Event, ImportEvent, Merge
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import MemoryTransport
from plugins.mixpanel_limits import MixpanelLimits


def pipeline(transport: MemoryTransport) -> Pipeline:
    return Pipeline([("mixpanel_limits", MixpanelLimits())], {"default": transport})


def import_record() -> dict[str, object]:
    return {
        "event": "Backfilled",
        "properties": {"distinct_id": "u-1", "time": 1_600_000_000, "$insert_id": "b-1"},
    }


def test_an_import_event_without_a_token_passes() -> None:
    transport = MemoryTransport()
    pipeline(transport).submit(ImportEvent.from_record(import_record()))
    assert [m.record["event"] for m in transport.messages] == ["Backfilled"]


def test_a_merge_without_a_token_passes() -> None:
    transport = MemoryTransport()
    record = {"event": "$merge", "properties": {"$distinct_ids": ["u-1", "u-2"]}}
    pipeline(transport).submit(Merge.from_record(record))
    assert len(transport.messages) == 1


def test_a_track_event_without_a_token_is_refused_naming_the_field() -> None:
    transport = MemoryTransport()
    record = {
        "event": "Live",
        "properties": {"distinct_id": "u-1", "time": time.time(), "$insert_id": "t-1"},
    }
    with pytest.raises(ValidationError) as raised:
        pipeline(transport).submit(Event.from_record(record))
    assert [(p.field, p.rule) for p in raised.value.problems] == [
        ("properties.token", "is required on /track (the project token)")
    ]
    assert transport.messages == []
