"""What an enricher builds by hand is held to what the client builds: frozen, and JSON.

A record of plain dicts (``attrs.evolve(message, record={...})``, as hooks.md offers) failed
validation as the message's own fault ("properties: must be an object"), naming no plugin,
and under ``on_invalid = "drop"`` every event was dropped with a WARNING; without
``mixpanel_limits`` the mutable record went to the transports. A NaN or an infinity added
through ``FrozenDict.merged`` went out as ``null``, while a set there was refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from mixpanel_core import Message, Mixpanel, Pipeline, PluginError, hookimpl
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import NotJSONError
from mixpanel_core.frozen import FrozenDict, freeze
from mixpanel_core.testing import MemoryTransport

Build = Callable[[Any], Message]

PLAIN_RECORDS: dict[str, Build] = {
    "evolve, a dict record": lambda m: attrs.evolve(
        m, record={**m.record, "properties": {**m.properties, "region": "eu"}}
    ),
    "evolve, plain properties in a FrozenDict": lambda m: attrs.evolve(
        m, record=FrozenDict({**m.record, "properties": {**m.properties, "region": "eu"}})
    ),
}

NOT_JSON: dict[str, Build] = {
    "merged NaN": lambda m: m.with_property_values(m.properties.merged({"n": math.nan})),
    "merged infinity": lambda m: m.with_property_values(m.properties.merged({"n": -math.inf})),
    "merged set": lambda m: m.with_property_values(m.properties.merged({"n": {1}})),
}

FROZEN_BY_HAND: dict[str, Build] = {
    "merged plain dict and list": lambda m: m.with_property_values(
        m.properties.merged({"region": {"code": "eu", "zones": [1, 2]}})
    ),
    "evolve, record frozen": lambda m: attrs.evolve(
        m, record=freeze({**m.record, "properties": {**m.properties, "region": "eu"}}, "")
    ),
    "with_property_values of a plain dict": lambda m: m.with_property_values(
        {**m.properties, "region": "eu"}
    ),
}


def client_with(build: Build, plugins: list[str], on_invalid: str) -> tuple[Mixpanel, Any]:
    class Enricher:
        @hookimpl
        def mixpanel_enrich(self, message: Message) -> Message:
            return build(message)

    transport = MemoryTransport()
    config = config_from_mapping(
        {"pipeline": {"on_invalid": on_invalid}, "plugins": {"enabled": plugins}}
    )
    pipeline = Pipeline.from_config(
        config, transports={"default": transport}, extra_plugins=[("tenant", Enricher())]
    )
    return Mixpanel("tok", pipeline=pipeline), transport


@pytest.mark.parametrize("on_invalid", ["raise", "drop"])
@pytest.mark.parametrize("plugins", [["mixpanel_limits"], []], ids=["limits", "no-plugins"])
@pytest.mark.parametrize("build", PLAIN_RECORDS.values(), ids=PLAIN_RECORDS.keys())
def test_a_record_of_plain_dicts_is_the_plugins_failure_whatever_is_enabled(
    build: Build, plugins: list[str], on_invalid: str
) -> None:
    client, transport = client_with(build, plugins, on_invalid)

    with pytest.raises(PluginError) as caught:
        client.track("user-1", "Ev")

    assert (caught.value.plugin, caught.value.hook) == ("tenant", "mixpanel_enrich")
    assert "is not frozen" in str(caught.value)
    assert transport.messages == []


@pytest.mark.parametrize("build", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_a_value_json_cannot_carry_added_by_merged_is_refused_naming_it(build: Build) -> None:
    client, transport = client_with(build, [], "raise")

    with pytest.raises(PluginError) as caught:
        client.track("user-1", "Ev")

    assert caught.value.plugin == "tenant"
    assert isinstance(caught.value.__cause__, NotJSONError)
    assert [p.field for p in caught.value.__cause__.problems] == ["n"]
    assert transport.messages == []


@pytest.mark.parametrize("build", FROZEN_BY_HAND.values(), ids=FROZEN_BY_HAND.keys())
def test_what_is_frozen_on_the_way_is_sent_frozen(build: Build) -> None:
    client, transport = client_with(build, ["mixpanel_limits"], "raise")

    client.track("user-1", "Ev")

    [message] = transport.messages
    assert isinstance(message.record, FrozenDict)
    assert isinstance(message.properties, FrozenDict)
    region = message.properties["region"]
    assert region == "eu" or (isinstance(region, FrozenDict) and region["zones"] == (1, 2)), region
