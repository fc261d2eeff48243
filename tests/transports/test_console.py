"""The console transport prints one JSON line per message; the memory transport keeps them."""

from __future__ import annotations

import json

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping


def test_console_prints_endpoint_and_record(capsys: pytest.CaptureFixture[str]) -> None:
    client = Mixpanel(
        "tok", config=config_from_mapping({"transports": {"out": {"type": "console"}}})
    )
    client.track("u-1", "E", {"a": 1})
    client.people_set("u-1", {"b": 2})
    first, second = capsys.readouterr().out.splitlines()
    endpoint, _, payload = first.partition(": ")
    assert endpoint == "track"
    assert json.loads(payload)["properties"]["a"] == 1
    assert second.startswith('engage: {"$token":"tok"')


def test_memory_transport_filters_records_by_endpoint() -> None:
    client = Mixpanel(
        "tok", config=config_from_mapping({"transports": {"mem": {"type": "memory"}}})
    )
    client.track("u-1", "E")
    client.people_set("u-1", {"b": 2})
    memory = client.pipeline.transport("mem")
    assert [r["$set"] for r in memory.records("engage")] == [{"b": 2}]  # type: ignore[attr-defined]
    assert len(memory.records()) == 2  # type: ignore[attr-defined]
