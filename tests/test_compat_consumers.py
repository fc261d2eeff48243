"""The official consumers as drop-ins: same constructor, endpoints, flush and exception."""

from __future__ import annotations

import mixpanel
import pytest

from mixpanel_core import Mixpanel as CoreMixpanel
from mixpanel_core.compat import MixpanelException, ServiceAccountCredentials
from mixpanel_core.compat_consumers import BufferedConsumer, Consumer
from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"


def test_the_official_client_sends_through_our_buffered_consumer(
    mixpanel_emulator: Emulator,
) -> None:
    consumer = BufferedConsumer(max_size=100, api_host=mixpanel_emulator.base_url)
    mp = mixpanel.Mixpanel(TOKEN, consumer=consumer)
    for i in range(250):
        mp.track(f"user-{i}", "signup", {"plan": "pro"})
    mp.people_set("user-1", {"plan": "pro"})
    mp.group_set("company", "acme", {"size": 5})
    assert mixpanel_emulator.client.stats()["accepted"]["track"] == 200  # two full buffers
    consumer.flush()
    accepted = mixpanel_emulator.client.stats()["accepted"]
    assert (accepted["track"], accepted["engage"], accepted["groups"]) == (250, 1, 1)


def test_consumer_sends_each_message_at_once_with_every_import_credential(
    mixpanel_emulator: Emulator,
) -> None:
    """The imported records carry a token this project does not know (refused on its own,
    below): each import is accepted only if the consumer sent the credential it was given."""
    unknown = "not-this-projects-token"
    base_url = mixpanel_emulator.base_url
    plain = mixpanel.Mixpanel(unknown, consumer=Consumer(api_host=base_url))
    with pytest.raises(MixpanelException, match="project token"):
        plain.import_data(None, "user-1", "old", 1_700_000_000)
    credentials = ServiceAccountCredentials("sa-user", "sa-secret", "12345")
    with_account = mixpanel.Mixpanel(
        unknown, consumer=Consumer(api_host=base_url, credentials=credentials)
    )
    with_account.import_data(None, "user-1", "by account", 1_700_000_000)
    plain.import_data(unknown, "user-1", "by secret", 1_700_000_000, api_secret="emulator-secret")
    mixpanel.Mixpanel(TOKEN, consumer=Consumer(api_host=base_url)).track("user-1", "now")
    client = mixpanel_emulator.client
    assert client.stats()["requests"]["import"] == {"401": 1, "200": 2}
    assert sorted(r["event"] for r in client.records("import")) == ["by account", "by secret"]
    assert [r["event"] for r in client.records("track")] == ["now"]


def test_an_unknown_endpoint_raises_mixpanel_exception() -> None:
    with pytest.raises(MixpanelException, match='No such endpoint "bogus"'):
        Consumer().send("bogus", "{}")


def test_refused_credentials_raise_mixpanel_exception_without_the_secret(
    mixpanel_emulator: Emulator,
) -> None:
    consumer = Consumer(api_host=mixpanel_emulator.base_url)
    record = (
        '{"event": "x", "properties": {"distinct_id": "u", "time": 1700000000, '
        '"$insert_id": "abc", "token": "emulator-token"}}'
    )
    with pytest.raises(MixpanelException, match="api secret") as caught:
        consumer.send("imports", record, api_secret="wrong-secret-123")
    assert "wrong-secret-123" not in str(caught.value)


def test_a_failed_flush_raises_with_message_and_endpoint_and_keeps_what_failed(
    mixpanel_emulator: Emulator,
) -> None:
    consumer = BufferedConsumer(max_size=10, api_host=mixpanel_emulator.base_url, retry_limit=0)
    mp = mixpanel.Mixpanel(TOKEN, consumer=consumer)
    for i in range(3):
        mp.track(f"user-{i}", "signup")
    mixpanel_emulator.client.fail_next(1, 503)
    with pytest.raises(MixpanelException) as caught:
        consumer.flush()
    assert caught.value.endpoint == "events"
    assert caught.value.message is not None
    assert caught.value.message.startswith("[")
    assert caught.value.message.count('"signup"') == 3
    consumer.flush()  # the failed records were kept and go now
    assert len(mixpanel_emulator.client.insert_ids("track")) == 3


def test_our_client_takes_the_drop_in_consumer_too(mixpanel_emulator: Emulator) -> None:
    consumer = BufferedConsumer(api_host=mixpanel_emulator.base_url)
    with CoreMixpanel(TOKEN, consumer) as mp:
        mp.track("user-1", "signup")
        mp.people_set("user-1", {"plan": "pro"})
    accepted = mixpanel_emulator.client.stats()["accepted"]
    assert (accepted["track"], accepted["engage"]) == (1, 1)


@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_integers_beyond_64_bits_arrive_exactly_as_the_official_writes_them(
    mixpanel_emulator: Emulator, consumer_class: type[Consumer] | type[BufferedConsumer]
) -> None:
    consumer = consumer_class(api_host=mixpanel_emulator.base_url)
    official = mixpanel.Mixpanel(TOKEN, consumer=consumer)
    official.track("user-1", "big", {"n": 2**70 + 1, "m": -(2**65)})
    official.people_set("user-1", {"n": 2**64})
    if isinstance(consumer, BufferedConsumer):
        consumer.flush()
    (event,) = mixpanel_emulator.client.records("track")
    (update,) = mixpanel_emulator.client.records("engage")
    assert (event["properties"]["n"], event["properties"]["m"]) == (2**70 + 1, -(2**65))
    assert update["$set"]["n"] == 2**64
