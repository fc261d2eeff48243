"""The drop-in consumers over HTTP, against the emulator: what the official ones would send and
raise, where code written for them looks (return values, ``.message``, refusal texts)."""

from __future__ import annotations

import json
import time

import mixpanel
import pytest

from mixpanel_core.compat import Mixpanel, MixpanelException
from mixpanel_core.compat_consumers import BufferedConsumer, Consumer
from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
FILE_NAME = "file\udcff.txt"  # what os.fsdecode gives for a byte that is not UTF-8


def _event(insert_id: str, **properties: object) -> dict[str, object]:
    return {
        "event": "Upload",
        "properties": {
            "token": TOKEN,
            "distinct_id": "user-1",
            "time": int(time.time()),
            "$insert_id": insert_id,
            **properties,
        },
    }


@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_official_text_with_a_lone_surrogate_is_delivered(
    mixpanel_emulator: Emulator, consumer_class: type[Consumer] | type[BufferedConsumer]
) -> None:
    """json.dumps writes it as the escape ``\\udcff``; the official consumers send it on."""
    consumer = consumer_class(api_host=mixpanel_emulator.base_url)
    consumer.send("events", json.dumps(_event("a1", name=FILE_NAME)))
    if isinstance(consumer, BufferedConsumer):
        consumer.flush()
    (record,) = mixpanel_emulator.client.records("track")
    assert record["properties"]["name"] == FILE_NAME


def test_the_client_sends_a_file_name_from_os_fsdecode(mixpanel_emulator: Emulator) -> None:
    mp = Mixpanel(TOKEN, Consumer(api_host=mixpanel_emulator.base_url))
    mp.track("user-1", "Upload", {"name": FILE_NAME})
    mp.people_set("user-1", {"last_file": FILE_NAME})
    (event,) = mixpanel_emulator.client.records("track")
    (update,) = mixpanel_emulator.client.records("engage")
    assert event["properties"]["name"] == update["$set"]["last_file"] == FILE_NAME


def test_consumer_send_returns_none_as_the_official_does(mixpanel_emulator: Emulator) -> None:
    record = json.dumps(_event("a2"))
    official = mixpanel.Consumer(events_url=f"{mixpanel_emulator.base_url}/track")
    assert official.send("events", record) is None
    assert Consumer(api_host=mixpanel_emulator.base_url).send("events", record) is None  # type: ignore[func-returns-value]
    assert len(mixpanel_emulator.client.records("track")) == 2


# One time for both clients' events: read for each, a second could pass between them.
FIXED_NOW = float(int(time.time())) + 0.25


def _failed_flush_message(
    emulator: Emulator, consumer: BufferedConsumer | mixpanel.BufferedConsumer
) -> object:
    client = mixpanel.Mixpanel(TOKEN, consumer=consumer)
    client._now = lambda: FIXED_NOW
    client._make_insert_id = lambda: "0123456789abcdef0123456789abcdef"
    client.track("user-1", "Upload", {"city": "Zoë", "tiny": 1e-7, "when": 1.5e16})
    client.track("user-2", "Upload", {"big": 2**70})
    emulator.client.fail_next(1, 503)
    with pytest.raises((MixpanelException, mixpanel.MixpanelException)) as caught:
        consumer.flush()
    assert getattr(caught.value, "endpoint", None) == "events"
    consumer.flush()  # what failed was kept: sent now, not left to the exit hook
    return getattr(caught.value, "message", None)


def test_a_failed_flush_carries_the_official_message_exactly(mixpanel_emulator: Emulator) -> None:
    """The official class joins the texts it was given: ASCII escapes, ``1e-07``."""
    url = f"{mixpanel_emulator.base_url}/track"
    theirs = _failed_flush_message(
        mixpanel_emulator, mixpanel.BufferedConsumer(events_url=url, retry_limit=0)
    )
    ours = _failed_flush_message(
        mixpanel_emulator, BufferedConsumer(api_host=mixpanel_emulator.base_url, retry_limit=0)
    )
    assert isinstance(theirs, str)
    assert "\\u00eb" in theirs
    assert "1e-07" in theirs
    assert "1.5e+16" in theirs
    assert ours == theirs


def test_refused_credentials_say_where_to_look_in_code_and_in_toml(
    mixpanel_emulator: Emulator,
) -> None:
    consumer = Consumer(api_host=mixpanel_emulator.base_url)
    with pytest.raises(MixpanelException) as caught:
        consumer.send("imports", json.dumps(_event("a3")), api_secret="wrong-secret-123")
    text = str(caught.value)
    assert "Mixpanel refused the api secret for /import (HTTP 401)" in text
    assert "in code: credentials=, api_secret= or the project token" in text
    assert "under [mixpanel]" in text
    assert "wrong-secret-123" not in text
