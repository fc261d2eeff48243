"""``register`` adds or replaces super properties: a property registered again takes its new
value (a user's plan changing from free to pro), whether it came from config or an earlier
``register``."""

from __future__ import annotations

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.testing import MemoryTransport


def test_a_property_registered_again_takes_its_new_value() -> None:
    config = config_from_mapping(
        {
            "plugins": {
                "enabled": ["super_properties"],
                "super_properties": {"properties": {"env": "staging"}},
            }
        }
    )
    transport = MemoryTransport()
    client = Mixpanel("token", transport, config=config)
    supers = client.plugin("super_properties")

    supers.register({"plan": "free"})
    client.track("user-1", "Before")
    supers.register({"plan": "pro", "env": "prod"})
    client.track("user-1", "After")

    before, after = (record["properties"] for record in transport.records())
    assert (before["plan"], before["env"]) == ("free", "staging")
    assert (after["plan"], after["env"]) == ("pro", "prod")
