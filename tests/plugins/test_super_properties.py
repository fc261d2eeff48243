"""Super properties: from config, registered at run time, never overriding the caller."""

from __future__ import annotations

import sys
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


def register_many(plugin: SuperProperties, start: threading.Barrier, prefix: str) -> None:
    start.wait()
    for i in range(200):
        plugin.register({f"{prefix}{i}": i})


def test_register_is_safe_from_many_threads() -> None:
    # With the default 5 ms switch interval a thread finishes its whole loop before another
    # runs, so the read-merge-write in ``register`` never overlaps and a missing lock goes
    # unseen. Switching threads every microsecond makes the lost update near certain without
    # the lock (20 rounds of 8 threads x 200 registrations each).
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(20):
            plugin = SuperProperties()
            start = threading.Barrier(8)
            threads = [
                threading.Thread(target=register_many, args=(plugin, start, f"t{n}-"))
                for n in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            expected = {f"t{n}-{i}": i for n in range(8) for i in range(200)}
            lost = sorted(expected.keys() - plugin.properties.keys())
            assert not lost, f"{len(lost)} of 1600 registrations lost, e.g. {lost[:3]}"
            assert dict(plugin.properties) == expected
    finally:
        sys.setswitchinterval(previous)
