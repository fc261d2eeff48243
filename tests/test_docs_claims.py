"""Numbers the documentation states about behaviour, checked against that behaviour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mixpanel_core.config import Config
from mixpanel_core.errors import ValidationError
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.testing import memory_client

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_property_count_docs_plugins_gives_for_an_event_with_super_properties() -> None:
    text = " ".join((DOCS / "plugins.md").read_text().split())
    found = re.search(
        r"An event (?:tracked )?with (\d+) properties and (\d+) super properties is refused "
        r"for its (\d+) properties",
        text,
    )
    assert found, "docs/plugins.md no longer states the example this test checks"
    given, supers, refused_for = map(int, found.groups())
    options = {"properties": FrozenDict({f"super-{n}": n for n in range(supers)})}
    config = Config(
        plugins=("mixpanel_limits", "super_properties"),
        plugin_options=FrozenDict(super_properties=FrozenDict(options)),
    )
    client, _ = memory_client("tok", config)

    with pytest.raises(ValidationError, match=rf"has {refused_for} properties"):
        client.track("user-1", "Signed up", {f"p{n}": n for n in range(given)})
