"""``unregister`` takes one name or several: ``unregister("plan")`` removes the property
``plan`` (as docs/plugins.md shows), not properties named by its letters."""

from __future__ import annotations

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.testing import MemoryTransport


def test_unregister_of_one_name_removes_that_property_only() -> None:
    supers = {"plan": "pro", "p": 1, "a": 2, "env": "prod"}
    config = config_from_mapping(
        {"plugins": {"enabled": ["super_properties"], "super_properties": {"properties": supers}}}
    )
    transport = MemoryTransport()
    client = Mixpanel("token", transport, config=config)

    client.plugin("super_properties").unregister("plan")
    client.plugin("super_properties").unregister(["env"])
    client.track("user-1", "E")

    [record] = transport.records()
    added = {k: v for k, v in record["properties"].items() if k in supers}
    assert added == {"p": 1, "a": 2}
