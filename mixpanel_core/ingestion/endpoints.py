"""Where each endpoint lives: ``[mixpanel] api_host`` (a host or a base URL) and ``urls``."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from mixpanel_core.errors import ConfigError
from mixpanel_core.messages import ENDPOINTS, Endpoint
from mixpanel_core.settings import MixpanelSettings

_LOOPBACK_NAMES = ("localhost",)


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
    """Refuse what is not http(s), and plain http off loopback unless explicitly allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: {url!r} is not an http(s) URL or host name")
    if "#" in url:
        # Never sent; and the query the client adds (strict=1, project_id) would land after it.
        raise ConfigError(f"{key}: {url!r} has a fragment (#...); remove it")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{key}: {url!r} would send credentials and data unencrypted; use https, or set "
            "mixpanel.allow_insecure_http = true if this network is trusted"
        )
    return url


def endpoint_urls(settings: MixpanelSettings) -> dict[Endpoint, str]:
    """The URL of every endpoint: ``urls.NAME`` if set, else ``BASE/NAME``."""
    base = base_url(settings.api_host)
    if "?" in base or "#" in base:
        # The endpoint's path is appended to the base: it would end up inside the query.
        raise ConfigError(
            f"mixpanel.api_host: {settings.api_host!r} has a query or fragment; give a host or "
            "a base URL, and an endpoint URL with a query as mixpanel.urls.NAME"
        )
    overrides: Mapping[str, str] = settings.urls
    urls: dict[Endpoint, str] = {}
    for endpoint in ENDPOINTS:
        if endpoint in overrides:
            url, key = overrides[endpoint], f"mixpanel.urls.{endpoint}"
        else:
            url, key = f"{base}/{endpoint}", "mixpanel.api_host"
        urls[endpoint] = check_url(url, settings.allow_insecure_http, key)
    return urls
