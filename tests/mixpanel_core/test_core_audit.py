"""Defects found auditing the core: each test failed before its fix.

What reaches Mixpanel is read from the memory transport, or from a consumer that records its
calls, side by side with the official ``mixpanel`` package.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import mixpanel as official
import pytest

from mixpanel_core import (
    ConfigError,
    Message,
    Mixpanel,
    TransportError,
    ValidationError,
    hookimpl,
)
from mixpanel_core.config import config_from_mapping
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import MemoryTransport, ReportCollector, memory_client

FIXED_TIME = round(time.time(), 3)


class Recorder:
    """An official-style consumer that keeps (endpoint, decoded record)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def send(self, endpoint: str, json_message: str, *auth: Any) -> None:
        self.sent.append((endpoint, json.loads(json_message)))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda mp: mp.track("u-1", "E", {"time": 10**400}), id="track"),
        pytest.param(lambda mp: mp.import_data(None, "u-1", "E", 10**400), id="import_data"),
    ],
)
def test_a_time_too_large_for_a_float_is_a_validation_error_naming_the_field(call: Any) -> None:
    # It was a PluginError wrapping OverflowError: neither the field nor the rule was named.
    client, transport = memory_client()
    with pytest.raises(ValidationError) as caught:
        call(client)
    assert [p.field for p in caught.value.problems] == ["properties.time"]
    assert transport.records() == []


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda mp: mp.track("u-1", "E", 5), id="track properties"),
        pytest.param(lambda mp: mp.track("u-1", "E", None, meta=5), id="track meta"),
        pytest.param(lambda mp: mp.import_data(None, "u-1", "E", 1.6e9, 5), id="import"),
        pytest.param(lambda mp: mp.alias("a", "b", meta=5), id="alias meta"),
        pytest.param(lambda mp: mp.people_set("u-1", {"a": 1}, meta=[1]), id="people meta"),
        pytest.param(lambda mp: mp.people_track_charge("u-1", 5, 3), id="charge properties"),
    ],
)
def test_on_invalid_drop_drops_arguments_that_are_not_mappings_instead_of_raising(
    call: Any,
) -> None:
    # A NaN was dropped and reported under on_invalid = "drop"; a properties argument that
    # is not a mapping raised in the caller all the same.
    config = config_from_mapping({"pipeline": {"on_invalid": "drop"}, "plugins": {"enabled": []}})
    reports = ReportCollector()
    transport = MemoryTransport()
    pipeline = Pipeline([("reports", reports)], {"default": transport}, config)
    call(Mixpanel("tok", pipeline=pipeline))
    assert transport.records() == []
    assert [r.status.value for r in reports.reports] == ["dropped"]
    assert "must be a mapping of names to values" in (reports.reports[0].reason or "")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda mp: mp.people_update([("$distinct_id", "u-1"), ("$set", {"a": 1})]),
            id="people_update",
        ),
        pytest.param(
            lambda mp: mp.group_update(
                [("$group_key", "company"), ("$group_id", "acme"), ("$set", {"a": 1})]
            ),
            id="group_update",
        ),
    ],
)
def test_profile_updates_given_as_pairs_send_what_the_official_sends(call: Any) -> None:
    # The official record.update(message) takes pairs; ours raised TypeError on them.
    sent = []
    for client_class in (official.Mixpanel, Mixpanel):
        recorder = Recorder()
        client = client_class("tok", recorder)
        client._now = lambda: FIXED_TIME
        call(client)
        if isinstance(client, Mixpanel):
            client.flush()
        sent.append(recorder.sent)
    assert sent[1] == sent[0]
    assert len(sent[0]) == 1


def test_redaction_listed_before_super_properties_still_redacts_them() -> None:
    # Enrichers ran in the listed order, so a super property added after redaction left the
    # process as it was.
    config = config_from_mapping(
        {
            "plugins": {
                "enabled": ["redaction", "super_properties"],
                "redaction": {"drop": ["email"], "hash": ["user"], "salt": "pepper"},
                "super_properties": {"properties": {"email": "a@b.c", "user": "ann"}},
            }
        }
    )
    client, transport = memory_client(config=config)
    client.track("u-1", "E", {"plan": "pro"})
    (event,) = transport.records()
    assert "email" not in event["properties"]
    assert event["properties"]["user"] != "ann"
    assert event["properties"]["plan"] == "pro"


def test_a_route_naming_a_transport_twice_is_a_config_error() -> None:
    # It was accepted, and every matching message was sent twice there: a people_increment
    # counted twice.
    with pytest.raises(ConfigError, match=r"routes\[0\]\.transport: names a transport more"):
        config_from_mapping(
            {
                "transports": {"a": {"type": "memory"}, "b": {"type": "memory"}},
                "routes": [{"transport": ["a", "a"]}],
            }
        )


class Answer:
    """A router plugin answering what it is given."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    @hookimpl
    def mixpanel_route(self, message: Message, transports: Sequence[str]) -> Any:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "rule"),
    [
        pytest.param(["a", "a"], "more than once", id="twice"),
        pytest.param("a", "the string 'a'", id="a string"),
    ],
)
def test_a_router_answer_that_would_misroute_is_refused_before_anything_is_sent(
    answer: Any, rule: str
) -> None:
    # ["a", "a"] sent the message twice to "a"; the string "a" was read as the names of its
    # characters ("direct" as "d", "i", "r", ...).
    a, default = MemoryTransport(), MemoryTransport()
    pipeline = Pipeline([("answer", Answer(answer))], {"a": a, "default": default})
    client = Mixpanel("tok", pipeline=pipeline)
    with pytest.raises(TransportError, match=rule):
        client.people_increment("u-1", {"n": 1})
    assert a.records() == []
    assert default.records() == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(lambda mp: mp.track("u-1", "E", {"n": 10**5000}), "properties.n", id="track"),
        pytest.param(
            lambda mp: mp.people_set("u-1", {"a": {"b": [1, 10**5000]}}),
            "$set.a.b[1]",
            id="people nested",
        ),
    ],
)
def test_an_integer_too_long_to_write_is_a_validation_error_naming_it(
    call: Any, field: str
) -> None:
    # Python writes no integer of more than 4,300 digits: it was a PluginError wrapping
    # ValueError, naming neither the field nor the rule, and on_invalid did not apply.
    client, transport = memory_client()
    with pytest.raises(ValidationError) as caught:
        call(client)
    assert [(p.field, p.rule) for p in caught.value.problems] == [
        (field, "an integer of more than 4300 digits cannot be written")
    ]
    assert transport.records() == []
    config = config_from_mapping({"pipeline": {"on_invalid": "drop"}})
    reports = ReportCollector()
    pipeline = Pipeline.from_config(config, {"default": transport}, [("reports", reports)])
    call(Mixpanel("tok", pipeline=pipeline))
    assert [r.status.value for r in reports.reports] == ["dropped"]
    assert transport.records() == []
