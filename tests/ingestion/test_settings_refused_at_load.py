"""``[mixpanel]`` mistakes refused when the file is loaded, naming the key, never quoting a
secret: empty credentials, a bad port, a query or fragment in an endpoint URL."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mixpanel_core import ConfigError, Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion.auth import SERVICE_ACCOUNT, configured_credentials
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

SECRET = "S3CRET-in-test"
ACCOUNT = {"service_account_username": "sa", "service_account_secret": SECRET, "project_id": "1"}


@pytest.mark.parametrize(
    ("mixpanel", "key"),
    [
        ({**ACCOUNT, "service_account_secret": "${SA}"}, "service_account_secret"),
        ({**ACCOUNT, "service_account_username": "${SA}"}, "service_account_username"),
        ({**ACCOUNT, "project_id": "${SA}"}, "project_id"),
        ({**ACCOUNT, "project_id": "  "}, "project_id"),
        ({"api_secret": "${SA}"}, "api_secret"),
        ({"token": "${SA}"}, "token"),
    ],
)
def test_an_empty_credential_is_refused_naming_it_not_taken_for_none(
    mixpanel: dict[str, Any], key: str
) -> None:
    """A ${VAR} set to "" in a deployment: /import used to fall back to the next kind of
    credential (the project token) without a word."""
    document = {"mixpanel": {"token": "project-token", **mixpanel}}
    with pytest.raises(ConfigError, match=f"{key}: must not be empty or blank") as caught:
        config_from_mapping(document, {"SA": ""})
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("key", ["service_account_secret", "api_secret"])
def test_an_empty_secret_is_refused_from_python_too(key: str) -> None:
    values: dict[str, Any] = {**ACCOUNT, "service_account_secret": Secret(SECRET)}
    values[key] = Secret("")
    with pytest.raises(ValueError, match=f"{key}: must not be empty"):
        MixpanelSettings(**values)


def test_a_whole_service_account_is_what_import_uses() -> None:
    config = config_from_mapping({"mixpanel": {"token": "project-token", **ACCOUNT}})
    credentials = configured_credentials(config.mixpanel)
    assert credentials is not None
    assert credentials.kind == SERVICE_ACCOUNT


@pytest.mark.parametrize(
    ("mixpanel", "key"),
    [
        ({"api_host": "https://example.com:abc"}, "mixpanel.api_host"),
        ({"api_host": "https://example.com:99999"}, "mixpanel.api_host"),
        ({"api_host": "example.com:0"}, "mixpanel.api_host"),
        ({"urls": {"import": "https://example.com:65536/import"}}, "mixpanel.urls.import"),
    ],
)
def test_a_port_that_is_not_1_to_65535_is_refused_when_the_file_is_loaded(
    mixpanel: dict[str, Any], key: str
) -> None:
    """It used to pass loading and building; the first send then raised a raw ValueError
    (http), or every record was reported FAILED (buffered_http)."""
    with pytest.raises(ConfigError, match=f"{key}: .* has an invalid port; it must be a number"):
        config_from_mapping({"mixpanel": mixpanel, "transports": {"t": {"type": "http"}}})


def test_an_ipv6_base_url_with_a_port_is_accepted() -> None:
    config = config_from_mapping({"mixpanel": {"api_host": "http://[::1]:8080"}})
    assert config.mixpanel.api_host == "http://[::1]:8080"


@pytest.mark.parametrize(
    ("mixpanel", "key"),
    [
        ({"api_host": f"https://example.com/?key={SECRET}"}, "mixpanel.api_host"),
        ({"api_host": f"https://example.com#{SECRET}"}, "mixpanel.api_host"),
        ({"urls": {"track": f"https://example.com/track?key={SECRET}"}}, "mixpanel.urls.track"),
        ({"urls": {"track": f"https://example.com/track#{SECRET}"}}, "mixpanel.urls.track"),
    ],
)
def test_a_query_or_fragment_is_refused_when_the_file_is_loaded_without_quoting_it(
    mixpanel: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=f"{key}: has a query") as caught:
        config_from_mapping({"mixpanel": mixpanel})
    assert SECRET not in str(caught.value)


def test_a_key_in_an_endpoint_query_never_reaches_the_wire_or_the_logs(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs every request line, query included, at DEBUG; the URL used to be taken
    and the event sent with the key in it."""
    url = f"{mixpanel_emulator.base_url}/track?key={SECRET}"
    document = {
        "mixpanel": {"token": "emulator-token", "urls": {"track": url}},
        "transports": {"t": {"type": "http"}},
    }

    def a_users_flow() -> None:
        # Before, every step succeeded and the key went out with the event.
        client = Mixpanel("emulator-token", config=config_from_mapping(document))
        client.track("user-1", "Signed up")
        client.close()

    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as caught:
        a_users_flow()
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text
    assert mixpanel_emulator.records("track") == []
