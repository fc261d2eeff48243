"""Which proxy a URL is posted through, chosen from the environment as requests chooses it.

The variables are ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``, as
``urllib.request.getproxies_environment()`` reads them (lower case too); the session reads
them once, when it is built.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

import urllib3
import urllib3.exceptions

from mixpanel_core.ingestion.endpoints import is_loopback
from mixpanel_core.ingestion.session_errors import RequestError


def proxy_for(url: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy ``url`` goes through, from ``urllib.request.getproxies_environment()``.

    As requests chooses it: ``NO_PROXY`` (hosts, domain suffixes, networks, ``*``) first, then the
    scheme's variable, then ``ALL_PROXY``; a proxy without a scheme is ``http://``. Loopback
    is never proxied, whatever ``NO_PROXY`` says: plain http is allowed to it only because
    the data stays on this machine (and the emulator in tests lives there).
    """
    chosen = proxy_variable(url, proxies)
    if chosen is None:
        return None
    proxy = proxies[chosen]
    return proxy if "://" in proxy else f"http://{proxy}"


def proxy_variable(url: str, proxies: Mapping[str, str]) -> str | None:
    """The key of ``proxies`` (``https``, ``http``, ``all``) whose proxy ``url`` goes through."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    if _no_proxy(host, parts.port, proxies.get("no", "")):
        return None
    for key in (parts.scheme, "all"):
        if proxies.get(key):
            return key
    return None


def split_proxy(proxy: str, variable: str) -> tuple[str, str | None]:
    """The proxy URL without its user info, and that user info (``None``: none).

    A URL urllib3 cannot parse is refused without quoting it, nor chaining urllib3's error,
    which quotes it: it may hold a password.
    """
    refusal = RequestError(
        f"the proxy URL in {variable} cannot be parsed (not shown: it may hold a "
        "password); a password with characters such as @ # / must be percent-encoded"
    )
    try:
        parsed = urllib3.util.parse_url(proxy)
    except urllib3.exceptions.LocationParseError:
        raise refusal from None
    # A proxy is a host and a port: anything after them is a password's unencoded / ? or #
    # that moved the rest of the URL out of the authority (``http://me:2024/pw@proxy:3128``
    # reads as host "me", port 2024), which would send every request to the wrong host and
    # quote the password in each error.
    if parsed.path not in (None, "", "/") or parsed.query is not None or parsed.fragment:
        raise refusal
    return parsed._replace(auth=None, path=None).url, parsed.auth


def _no_proxy(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` names the host: ``*``, the host (with or without its port), a
    domain it is in (``example.com`` or ``.example.com``), or a network of its address."""
    host = host.lower()
    names = (host, f"{host}:{port}") if port is not None else (host,)
    for entry in no_proxy.split(","):
        name = entry.strip().lstrip(".").lower()
        if name == "*":
            return True
        if not name:
            continue
        if any(n == name or n.endswith(f".{name}") for n in names):
            return True
        if "/" in name and _in_network(host, name):
            return True
    return False


def _in_network(host: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except (ValueError, TypeError):
        return False
