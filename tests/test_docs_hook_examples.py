"""The hook implementations shown in the docs do what their text says, run as they are written.

A review found three of them taking `alias()`'s ``$create_alias`` and `merge()`'s ``$merge``
for events (``Alias`` and ``Merge`` are ``Event`` subclasses): the validator refused every
`alias()` and `merge()`, the enrichers stamped them, and the replay fix-up raised a
``TypeError`` on a ``$merge`` (no ``time``), which stopped the replay.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core import Message
from mixpanel_core.errors import ConfigError
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.messages import Event
from mixpanel_core.plugin import PluginContext
from mixpanel_core.testing import memory_client

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def example(page: str, name: str) -> Any:
    """The class ``name`` of the Python block of ``docs/page`` that defines it."""
    for _indent, code in BLOCK.findall((DOCS / page).read_text()):
        if f"\nclass {name}" in "\n" + textwrap.dedent(code):
            namespace: dict[str, Any] = {}
            exec(textwrap.dedent(code), namespace)  # the docs' own text, as a reader copies it
            return namespace[name]
    raise AssertionError(f"docs/{page} has no block defining {name}")


def every_kind() -> dict[str, Message]:
    client, memory = memory_client()
    client.track("user-1", "Signed up", {"plan": "pro"})
    client.import_data("key", "user-1", "Old", 1_600_000_000, {"plan": "pro"})
    client.alias("user-1-alias", "user-1")
    client.merge("key", "user-1", "user-2")
    client.people_set("user-1", {"a": 1})
    client.group_set("company", "acme", {"a": 1})
    return {message.kind: message for message in memory.messages}


def test_the_messages_cover_every_kind() -> None:
    assert sorted(every_kind()) == ["alias", "event", "group", "import", "merge", "people"]


def without_plan(message: Message) -> Event:
    assert isinstance(message, Event)
    return message.with_property_values(message.properties.without(["plan"]))


def test_require_plan_refuses_only_events_of_track_without_a_plan() -> None:
    validator = example("hooks.md", "RequirePlan")()
    messages = every_kind()
    for kind, message in messages.items():
        assert not validator.mixpanel_validate(message), kind
    assert not validator.mixpanel_validate(without_plan(messages["import"]))  # "nor imports"
    (problem,) = validator.mixpanel_validate(without_plan(messages["event"]))
    assert problem.field == "properties.plan"


def test_the_tenant_plugin_is_built_from_its_table() -> None:
    context = PluginContext("tenant", FrozenDict(tenant="acme-eu"))
    tenant = example("plugins.md", "Tenant").from_config(context)
    event = every_kind()["event"]
    enriched = tenant.mixpanel_enrich(event)
    assert enriched.properties["tenant"] == "acme-eu"
    # The caller's own tenant wins, as with super_properties (review N1: it was replaced).
    assert tenant.mixpanel_enrich(event.with_properties({"tenant": "mine"})) is None
    with pytest.raises(ConfigError, match=r"^plugins\.tenant\.tenat: unknown key"):
        example("plugins.md", "Tenant").from_config(PluginContext("tenant", FrozenDict(tenat="x")))


@pytest.mark.parametrize(("page", "name"), [("hooks.md", "AddRegion"), ("plugins.md", "Tenant")])
def test_the_enrichers_stamp_events_and_nothing_else(page: str, name: str) -> None:
    enricher = example(page, name)("stamp")
    for kind, message in every_kind().items():
        enriched = enricher.mixpanel_enrich(message)
        if kind in ("event", "import"):
            assert "stamp" in enriched.properties.values(), kind
        else:
            assert enriched is None, kind


def test_fix_times_fixes_microsecond_times_and_leaves_the_rest() -> None:
    fix = example("commands.md", "FixTimes")()
    messages = every_kind()
    for kind, message in messages.items():
        assert fix.mixpanel_enrich(message) is None, kind  # times in seconds, or none
    for kind in ("event", "import"):
        event = messages[kind]
        assert isinstance(event, Event)
        micro = event.with_properties({"time": 1_600_000_000_000_000})
        assert fix.mixpanel_enrich(micro).time == 1_600_000_000, kind
