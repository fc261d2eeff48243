"""``import_data(api_key, ..., api_secret=...)`` and ``merge`` carry their legacy credentials on
the message (``auth``), and /import is authenticated by them. An enricher that returns a
changed copy must keep them: a message enriched by ``super_properties`` or ``redaction`` and
sent without them would go with the project's credentials, or be refused, instead of with the
caller's."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.messages import ImportAuth
from mixpanel_core.secrets import Secret
from mixpanel_core.testing import MemoryTransport

ENRICHERS = {
    "super_properties": {"properties": {"app": "shop"}},
    "redaction": {"drop": ["email"], "hash": ["distinct_id"], "salt": "pepper"},
}


@pytest.mark.parametrize("enricher", list(ENRICHERS))
def test_an_enriched_import_and_merge_keep_their_credentials(enricher: str) -> None:
    options: dict[str, Any] = {"enabled": [enricher], enricher: ENRICHERS[enricher]}
    transport = MemoryTransport()
    client = Mixpanel("token", transport, config=config_from_mapping({"plugins": options}))

    client.import_data("key", "user-1", "E", 1_600_000_000, {"email": "a@b.c"}, api_secret="s")
    client.merge("key", "user-1", "user-2", api_secret="s")

    imported, merged = transport.messages
    # The enricher made new messages (a super property added; an email dropped, ids hashed) ...
    props = imported.record["properties"]
    assert props.get("app") == "shop" if enricher == "super_properties" else "email" not in props
    # ... and they go with the caller's credentials.
    assert imported.auth == ImportAuth("key", Secret("s"))
    assert merged.auth == ImportAuth("key", Secret("s"))
