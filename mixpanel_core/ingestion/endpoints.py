"""Where each endpoint lives: ``[mixpanel] api_host`` (a host or a base URL) and ``urls``."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

import idna

from mixpanel_core.errors import ConfigError
from mixpanel_core.messages import ENDPOINTS, Endpoint
from mixpanel_core.settings import MixpanelSettings, shown_url

_LOOPBACK_NAMES = ("localhost",)
INSECURE_HTTP_SWITCH = "set mixpanel.allow_insecure_http = true if this network is trusted"
"""How a refusal of plain http off loopback ends: the drop-in consumers, which have no such
switch, say instead how to get one."""
MAX_PORT = 65535
# A DNS label as resolvers take it; ``_`` too, as container and cluster names have it.
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_host(host: str) -> bool:
    """Whether ``host`` is an IP address or a host name (an international one as well)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return all(map(_is_label, host.removesuffix(".").split(".")))


def _is_label(label: str) -> bool:
    """An international label is taken in the ASCII form urllib3 will send it in, by the
    same rules (IDNA 2008, strict): Python's own codec (IDNA 2003) took some it refuses."""
    if not label.isascii():
        try:
            label = idna.encode(label.lower(), strict=True, std3_rules=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return False
    return _LABEL.fullmatch(label) is not None


def base_url(api_host: str) -> str:
    """``https://HOST`` for a bare host name, or the given base URL without a trailing slash."""
    if "://" in api_host:
        return api_host.rstrip("/")
    return f"https://{api_host.strip('/')}"


def check_url(url: str, allow_insecure_http: bool, key: str, written: str | None = None) -> str:
    """Refuse what is not an http(s) URL with a valid port, a fragment, and plain http off
    loopback unless explicitly allowed. A query is kept: the client sends it as written.

    Messages quote ``written`` (what the file gave, when ``url`` was made from it; default
    ``url``) without its query: a query may hold a credential.
    """
    shown = repr(shown_url(url if written is None else written))
    if "#" in url:
        # Never sent; and the query the client adds (strict=1, project_id) would land after it.
        raise ConfigError(f"{key}: {shown} has a fragment (#...); remove it")
    not_a_url = ConfigError(f"{key}: {shown} is not an http(s) URL or host name")
    try:
        parts = urlsplit(url)  # raises for an unclosed [IPv6 address
    except ValueError:
        raise not_a_url from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise not_a_url
    if not is_host(parts.hostname):
        # Checked now: every request would fail, each record FAILED behind an HTTP
        # library's parse error that names no key.
        raise ConfigError(
            f"{key}: {shown} has an invalid host {parts.hostname!r}; a host is an IP address "
            "or a name of letters, digits, '-' and '_' between dots"
        )
    try:
        port = parts.port  # raises for a port that is not a number, or above 65535
    except ValueError:
        port = 0
    if port == 0:
        # Checked now: the first request would fail with a ValueError, or every record FAILED.
        raise ConfigError(
            f"{key}: {shown} has an invalid port; it must be a number from 1 to {MAX_PORT}"
        )
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{key}: {shown} would send credentials and data unencrypted; use https, or "
            f"{INSECURE_HTTP_SWITCH}"
        )
    return url


def url_query(url: str) -> dict[str, list[str]]:
    """The parameters ``url``'s own query says, each with every value given
    (``urls.import = ".../import?strict=0"``, ``urls.track = ".../track?ip=1"``): the client
    leaves out its own of the same names, which would contradict them."""
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def endpoint_urls(settings: MixpanelSettings) -> dict[Endpoint, str]:
    """The URL of every endpoint: ``urls.NAME`` if set (with its query, if any), else
    ``BASE/NAME``."""
    base = base_url(settings.api_host)
    if "?" in base:
        # The endpoint's path would be appended inside the query.
        raise ConfigError(
            f"mixpanel.api_host: {shown_url(settings.api_host)!r} has a query (not shown "
            "here: it may hold a credential); give a host or a base URL, and an endpoint URL "
            "with a query as mixpanel.urls.NAME"
        )
    overrides: Mapping[str, str] = settings.urls
    urls: dict[Endpoint, str] = {}
    for endpoint in ENDPOINTS:
        if endpoint in overrides:
            urls[endpoint] = check_url(
                overrides[endpoint], settings.allow_insecure_http, f"mixpanel.urls.{endpoint}"
            )
        else:
            url = f"{base}/{endpoint}"
            check_url(url, settings.allow_insecure_http, "mixpanel.api_host", settings.api_host)
            urls[endpoint] = url
    return urls
