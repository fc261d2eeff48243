"""The drop-ins side by side with the official package, both against the emulator over sockets:
what an existing user's ``except`` clauses catch, and how many requests a failure costs."""

from __future__ import annotations

import time
from typing import Any

import mixpanel
import pytest

from mixpanel_core import compat
from mixpanel_core.compat_consumers import Consumer
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import endpoints

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"


def _urls(emulator: Emulator) -> dict[str, str]:
    base = emulator.base_url
    return {
        "events_url": f"{base}/track",
        "people_url": f"{base}/engage",
        "import_url": f"{base}/import",
        "groups_url": f"{base}/groups",
    }


@pytest.fixture
def default_host_is_the_emulator(
    mixpanel_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> Emulator:
    """Both clients built without a consumer send to the emulator instead of api.mixpanel.com."""
    urls = _urls(mixpanel_emulator)
    defaults: Any = mixpanel.Consumer.__init__.__defaults__
    official_defaults = (
        urls["events_url"],
        urls["people_url"],
        urls["import_url"],
        None,
        urls["groups_url"],
        *defaults[5:],
    )
    monkeypatch.setattr(mixpanel.Consumer.__init__, "__defaults__", official_defaults)
    real_base_url = endpoints.base_url

    def base_url(api_host: str) -> str:
        if api_host == "api.mixpanel.com":
            return mixpanel_emulator.base_url
        return real_base_url(api_host)

    monkeypatch.setattr(endpoints, "base_url", base_url)
    return mixpanel_emulator


@pytest.mark.parametrize(
    ("label", "call"),
    [
        pytest.param("track", lambda mp: mp.track("user-1", "signup"), id="track refused"),
        pytest.param(
            "import",
            lambda mp: mp.import_data(None, "user-1", "old", 1_700_000_000, api_secret="wrong"),
            id="import with a wrong api_secret",
        ),
    ],
)
def test_a_client_without_consumer_raises_mixpanel_exception_as_the_official_does(
    default_host_is_the_emulator: Emulator, label: str, call: Any
) -> None:
    emulator = default_host_is_the_emulator
    for module in (mixpanel, compat):
        client = module.Mixpanel(TOKEN)
        client.track("user-1", "works")  # the default consumer reaches the emulator
        if label == "track":
            emulator.client.fail_next(1, 400, endpoints=["track"])
        with pytest.raises(module.MixpanelException) as caught:  # what users' code catches
            call(client)
        assert "wrong" not in str(caught.value)
    assert emulator.client.stats()["accepted"]["track"] == 2


def test_retry_limit_bounds_the_requests_of_a_failing_send_as_the_official_does(
    mixpanel_emulator: Emulator,
) -> None:
    record = (
        '{"event": "signup", "properties": {"token": "emulator-token", "distinct_id": "u", '
        f'"time": {time.time()}, "$insert_id": "abc"}}}}'
    )
    mixpanel_emulator.client.fail_fraction(1.0, [503])
    official = mixpanel.Consumer(
        **_urls(mixpanel_emulator), retry_limit=2, retry_backoff_factor=0.05
    )
    # Its retrying adapter is mounted for https:// only; the emulator speaks http.
    official._session.mount("http://", official._session.get_adapter("https://api.mixpanel.com"))
    with pytest.raises(mixpanel.MixpanelException):
        official.send("events", record)
    official_requests = mixpanel_emulator.client.stats()["requests"]["track"]["503"]
    assert official_requests == 3  # the first attempt and retry_limit retries

    mixpanel_emulator.client.reset()
    mixpanel_emulator.client.fail_fraction(1.0, [503])
    ours = Consumer(**_urls(mixpanel_emulator), retry_limit=2, retry_backoff_factor=0.05)
    started = time.monotonic()
    with pytest.raises(compat.MixpanelException, match="HTTP 503"):
        ours.send("events", record)
    elapsed = time.monotonic() - started
    our_requests = mixpanel_emulator.client.stats()["requests"]["track"]["503"]
    assert our_requests == official_requests
    assert elapsed < 5.0


def test_the_official_service_account_credentials_are_accepted(
    mixpanel_emulator: Emulator,
) -> None:
    """A user who switched ``Mixpanel`` but still builds the official package's
    ``ServiceAccountCredentials``: /import authenticates with them, as with ours."""
    for secret, accepted in (("sa-secret", 1), ("not-the-secret", 0)):
        credentials = mixpanel.ServiceAccountCredentials("sa-user", secret, "12345")
        consumer = Consumer(**_urls(mixpanel_emulator), retry_limit=0, credentials=credentials)
        client = compat.Mixpanel("emulator-token", consumer=consumer)
        if accepted:
            client.import_data(None, "u", "imported", time.time() - 3600)
        else:
            with pytest.raises(compat.MixpanelException, match="service account 'sa-user'"):
                client.import_data(None, "u", "imported", time.time() - 3600)
        assert mixpanel_emulator.client.stats()["accepted"]["import"] == 1
    with pytest.raises(TypeError, match="credentials: must be a ServiceAccountCredentials"):
        Consumer(**_urls(mixpanel_emulator), credentials=object())
