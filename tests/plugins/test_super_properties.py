"""Super properties: from config, registered at run time, never overriding the caller."""

from __future__ import annotations

import threading

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.testing import MemoryTransport
from plugins.super_properties import SuperProperties


def make_client() -> tuple[Mixpanel, MemoryTransport]:
    config = config_from_mapping(
        {
            "plugins": {
                "enabled": ["super_properties"],
                "super_properties": {"properties": {"app": "shop", "env": "prod"}},
            }
        }
    )
    transport = MemoryTransport()
    return Mixpanel("token", transport, config=config), transport


def test_config_properties_are_added_to_events_and_imports_only() -> None:
    client, transport = make_client()
    client.track("u-1", "E", {"env": "staging"})
    client.import_data(None, "u-1", "Old", 1_600_000_000)
    client.people_set("u-1", {"a": 1})
    client.alias("a-1", "u-1")
    event, imported, person, alias = transport.records()
    assert event["properties"]["app"] == "shop"
    assert event["properties"]["env"] == "staging"
    assert imported["properties"]["env"] == "prod"
    assert "app" not in person["$set"]
    assert "app" not in alias["properties"]


def test_register_and_unregister_at_run_time() -> None:
    client, transport = make_client()
    plugin: SuperProperties = client.plugin("super_properties")
    plugin.register({"plan": "pro"})
    client.track("u-1", "A")
    plugin.unregister(["plan", "env"])
    client.track("u-1", "B")
    first, second = transport.records()
    assert first["properties"]["plan"] == "pro"
    assert "plan" not in second["properties"]
    assert "env" not in second["properties"]
    assert second["properties"]["app"] == "shop"


def test_register_is_safe_from_many_threads() -> None:
    plugin = SuperProperties()

    def register_many(prefix: str) -> None:
        for i in range(200):
            plugin.register({f"{prefix}{i}": i})

    threads = [threading.Thread(target=register_many, args=(f"t{n}-",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(plugin.properties) == 1600
