"""The ``http`` transport: one request per message, raising when it is not accepted."""

from __future__ import annotations

import time

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import AuthenticationError, ConfigError, DeliveryError
from mixpanel_core.frozen import FrozenDict, freeze
from mixpanel_core.ingestion import HttpOptions
from mixpanel_core.messages import Event, ImportEvent
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings
from mixpanel_core.transport import TransportContext
from transports.http import HttpTransport

FAST = HttpOptions(backoff_base=0.001, backoff_cap=0.002, rate_limit_base=0.001)


def make_event(n: int, cls: type[Event] = Event, **props: object) -> Event:
    record = {
        "event": "e",
        "properties": {
            "token": "emulator-token",
            "distinct_id": f"u{n}",
            "time": time.time() - 10,
            "$insert_id": f"http-{n:020d}",
            **props,
        },
    }
    return cls(freeze(record, cls.kind))


@pytest.mark.integration
def test_send_returns_once_mixpanel_accepted_and_reports_it(mixpanel_emulator: Emulator) -> None:
    reports: list[DeliveryReport] = []
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url)
    transport = HttpTransport(settings, FAST, name="direct", report=reports.append)
    transport.send(make_event(1))
    assert mixpanel_emulator.client.insert_ids("track") == ["http-00000000000000000001"]
    assert [(r.status, r.transport) for r in reports] == [(DeliveryStatus.ACCEPTED, "direct")]
    assert transport.close() == ()


@pytest.mark.integration
def test_a_rejected_message_raises_delivery_error_with_its_report(
    mixpanel_emulator: Emulator,
) -> None:
    reports: list[DeliveryReport] = []
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, token="emulator-token")
    transport = HttpTransport(settings, FAST, report=reports.append)
    with pytest.raises(
        DeliveryError, match=r"^Mixpanel rejected the import message sent to /import: "
    ) as caught:
        transport.send(make_event(2, ImportEvent, time=5))
    assert caught.value.reports[0].status is DeliveryStatus.REJECTED
    assert caught.value.reports[0].field == "properties.time"
    assert reports == list(caught.value.reports)


@pytest.mark.integration
def test_refused_credentials_raise_authentication_error(mixpanel_emulator: Emulator) -> None:
    settings = MixpanelSettings(api_host=mixpanel_emulator.base_url, api_secret=Secret("nope"))
    transport = HttpTransport(settings, FAST)
    with pytest.raises(AuthenticationError, match="api secret") as caught:
        transport.send(make_event(3, ImportEvent))
    assert "nope" not in str(caught.value)


@pytest.mark.integration
def test_server_errors_are_retried_before_send_returns(mixpanel_emulator: Emulator) -> None:
    transport = HttpTransport(MixpanelSettings(api_host=mixpanel_emulator.base_url), FAST)
    mixpanel_emulator.client.fail_next(3, 502)
    transport.send(make_event(4))
    assert mixpanel_emulator.client.stats()["requests"]["track"] == {"502": 3, "200": 1}


@pytest.mark.integration
def test_the_client_sends_through_http_from_configuration(mixpanel_emulator: Emulator) -> None:
    config = config_from_mapping(
        {
            "mixpanel": {"token": "emulator-token", "api_host": mixpanel_emulator.base_url},
            "transports": {"direct": {"type": "http", "read_timeout": 5}},
        }
    )
    with Mixpanel("emulator-token", config=config) as mp:
        mp.track("user-1", "signup")
        mp.people_set("user-1", {"plan": "pro"})
        mp.merge(None, "user-1", "device-9", api_secret="emulator-secret")
    assert len(mixpanel_emulator.client.records("track")) == 1
    assert len(mixpanel_emulator.client.records("engage")) == 1
    (merge,) = mixpanel_emulator.client.records("import")
    assert merge["properties"]["$distinct_ids"] == ["user-1", "device-9"]


def test_mixpanel_with_only_a_token_sends_over_http_to_api_mixpanel_com() -> None:
    mp = Mixpanel("some-token")
    transport = mp.pipeline.transport("default")
    assert isinstance(transport, HttpTransport)
    assert transport.client.urls["track"] == "https://api.mixpanel.com/track"


def test_unknown_options_fail_with_their_key_path() -> None:
    context = TransportContext("direct")
    with pytest.raises(ConfigError, match=r"transports\.direct\.read_timeot"):
        HttpTransport.from_config(FrozenDict({"read_timeot": 1}), context)
    with pytest.raises(ConfigError, match=r"transports\.direct"):
        HttpTransport.from_config(FrozenDict({"read_timeout": 0}), context)
