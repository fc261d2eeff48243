"""``[mixpanel]`` mistakes refused when the file is loaded, naming the key, never quoting a
secret: empty credentials, a bad port, a query in api_host, a fragment in an endpoint URL."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.config import config_from_mapping
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
        ({"urls": {"track": f"https://example.com/track#{SECRET}"}}, "mixpanel.urls.track"),
    ],
)
def test_a_query_in_api_host_or_a_fragment_is_refused_when_the_file_is_loaded_without_quoting_it(
    mixpanel: dict[str, Any], key: str
) -> None:
    """A query in mixpanel.urls.NAME is sent as written (test_endpoint_query)."""
    with pytest.raises(ConfigError, match=f"{key}: 'https://example.com") as caught:
        config_from_mapping({"mixpanel": mixpanel})
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("mixpanel", "key"),
    [
        ({"api_host": "api mixpanel com"}, "mixpanel.api_host"),
        ({"api_host": "https://api..mixpanel.com"}, "mixpanel.api_host"),
        ({"api_host": "-api.mixpanel.com"}, "mixpanel.api_host"),
        ({"api_host": "api<mixpanel.com"}, "mixpanel.api_host"),
        ({"urls": {"engage": "https://api%20eu.mixpanel.com/engage"}}, "mixpanel.urls.engage"),
        # What Python's IDNA 2003 codec took and urllib3 (IDNA 2008) refuses (review R19).
        ({"api_host": "api\uff0emixpanel\uff0ecom"}, "mixpanel.api_host"),
        ({"api_host": "\u2603.net"}, "mixpanel.api_host"),
        ({"api_host": "a\u00adb.example"}, "mixpanel.api_host"),
    ],
)
def test_a_host_that_is_no_host_name_is_refused_when_the_file_is_loaded(
    mixpanel: dict[str, Any], key: str
) -> None:
    """``api mixpanel com`` passed loading and ``config check``; every request then failed
    with an HTTP library's parse error naming no key, each record FAILED or dead-lettered."""
    with pytest.raises(ConfigError, match=f"{key}: .* has an invalid host .*; a host is an IP"):
        config_from_mapping({"mixpanel": mixpanel, "transports": {"t": {"type": "http"}}})


@pytest.mark.parametrize(
    "api_host",
    [
        "api-eu.mixpanel.com",
        "mixpanel_emulator:8080",
        "https://api.mixpanel.com.",
        "bücher.example",
    ],
)
def test_host_names_as_resolvers_take_them_are_accepted(api_host: str) -> None:
    """A hyphen, an underscore (container names), a trailing dot, an international name."""
    config = config_from_mapping({"mixpanel": {"api_host": api_host}})
    assert config.mixpanel.api_host == api_host
