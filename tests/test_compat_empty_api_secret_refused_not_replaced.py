"""An ``api_secret`` given empty (an environment variable that was not set) is sent as the
official client sends it, and refused by Mixpanel: it must not be replaced by the project token,
which would import the records under a configuration that is wrong without a word."""

from __future__ import annotations

import json
import time

import mixpanel
import pytest

from mixpanel_core.compat import Mixpanel, MixpanelException
from mixpanel_core.compat_consumers import Consumer
from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"


def _event(insert_id: str) -> dict[str, object]:
    properties = {
        "token": TOKEN,
        "distinct_id": "u-1",
        "time": int(time.time()),
        "$insert_id": insert_id,
    }
    return {"event": "Import", "properties": properties}


def test_the_official_consumer_is_refused_for_an_empty_secret(mixpanel_emulator: Emulator) -> None:
    # What the drop-in must match: the official client sends Basic ":" and raises on the 401.
    consumer = mixpanel.Consumer(import_url=f"{mixpanel_emulator.base_url}/import")
    with pytest.raises(mixpanel.MixpanelException):
        consumer.send("imports", json.dumps(_event("off1")), api_secret="")
    assert mixpanel_emulator.records("import") == []


def test_an_empty_secret_given_to_send_is_refused_naming_it(mixpanel_emulator: Emulator) -> None:
    consumer = Consumer(api_host=mixpanel_emulator.base_url)
    with pytest.raises(MixpanelException) as caught:
        consumer.send("imports", json.dumps(_event("e1")), api_secret="")
    assert "Mixpanel refused the empty api secret for /import (HTTP 401)" in str(caught.value)
    assert mixpanel_emulator.records("import") == []


def test_import_data_with_an_empty_secret_is_refused_not_sent_with_the_token(
    mixpanel_emulator: Emulator,
) -> None:
    client = Mixpanel(TOKEN, consumer=Consumer(api_host=mixpanel_emulator.base_url))
    with pytest.raises(MixpanelException) as caught:
        client.import_data(None, "u-1", "Import", time.time() - 86400, api_secret="")
    assert "empty api secret" in str(caught.value)
    assert mixpanel_emulator.records("import") == []
    # Left out altogether, the secret is not given: the token authenticates, as documented.
    client.import_data(None, "u-1", "Import", time.time() - 86400)
    assert [r["event"] for r in mixpanel_emulator.records("import")] == ["Import"]
