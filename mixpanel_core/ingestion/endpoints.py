"""Where each endpoint lives: ``[mixpanel] api_host`` (a host or a base URL) and ``urls``."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from mixpanel_core.errors import ConfigError
from mixpanel_core.messages import ENDPOINTS, Endpoint
from mixpanel_core.settings import MixpanelSettings

_LOOPBACK_NAMES = ("localhost",)
MAX_PORT = 65535


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def base_url(api_host: str) -> str:
    """``https://HOST`` for a bare host name, or the given base URL without a trailing slash."""
    if "://" in api_host:
        return api_host.rstrip("/")
    return f"https://{api_host.strip('/')}"


def check_url(url: str, allow_insecure_http: bool, key: str) -> str:
    """Refuse what is not an http(s) URL with a valid port, a query or a fragment, and plain
    http off loopback unless explicitly allowed."""
    if "?" in url or "#" in url:
        # Mixpanel's endpoints take neither: the client adds its own query (strict=1,
        # project_id). Not quoted, nor ever sent: a query may hold a key, and urllib3 logs the
        # query of every request.
        raise ConfigError(
            f"{key}: has a query (?...) or a fragment (#...), not shown here as it may hold a "
            "credential; Mixpanel's URLs take neither (the client adds its own query), so "
            "remove it; credentials go in service_account_username/secret or api_secret"
        )
    not_a_url = ConfigError(f"{key}: {url!r} is not an http(s) URL or host name")
    try:
        parts = urlsplit(url)  # raises for an unclosed [IPv6 address
    except ValueError:
        raise not_a_url from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise not_a_url
    try:
        port = parts.port  # raises for a port that is not a number, or above 65535
    except ValueError:
        port = 0
    if port == 0:
        # Checked now: the first request would fail with a ValueError, or every record FAILED.
        raise ConfigError(
            f"{key}: {url!r} has an invalid port; it must be a number from 1 to {MAX_PORT}"
        )
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{key}: {url!r} would send credentials and data unencrypted; use https, or set "
            "mixpanel.allow_insecure_http = true if this network is trusted"
        )
    return url


def endpoint_urls(settings: MixpanelSettings) -> dict[Endpoint, str]:
    """The URL of every endpoint: ``urls.NAME`` if set, else ``BASE/NAME``."""
    base = base_url(settings.api_host)
    overrides: Mapping[str, str] = settings.urls
    urls: dict[Endpoint, str] = {}
    for endpoint in ENDPOINTS:
        if endpoint in overrides:
            url, key = overrides[endpoint], f"mixpanel.urls.{endpoint}"
        else:
            url, key = f"{base}/{endpoint}", "mixpanel.api_host"
        urls[endpoint] = check_url(url, settings.allow_insecure_http, key)
    return urls
