"""Which proxy a URL goes through, each ``NO_PROXY`` form on its own (as requests reads them)."""

from __future__ import annotations

import pytest

from mixpanel_core.ingestion.proxies import proxy_for

PROXIES = {"https": "proxy.internal:3128", "all": "http://all.internal:8080"}


@pytest.mark.parametrize(
    ("url", "no_proxy", "chosen"),
    [
        ("https://api.mixpanel.com/track", "", "http://proxy.internal:3128"),
        ("http://api.mixpanel.com/track", "", "http://all.internal:8080"),  # no http: all
        ("https://api.mixpanel.com/track", "*", None),
        ("https://api.mixpanel.com/track", " other.com , * ", None),
        ("https://api.mixpanel.com/track", "mixpanel.com", None),  # a domain it is in
        ("https://api.mixpanel.com/track", ".MIXPANEL.com", None),
        (
            "https://api.mixpanel.com/track",
            "pixpanel.com,xmixpanel.com",
            "http://proxy.internal:3128",
        ),
        ("https://api.mixpanel.com:8443/track", "api.mixpanel.com:8443", None),
        (
            "https://api.mixpanel.com:8443/track",
            "api.mixpanel.com:443",
            "http://proxy.internal:3128",
        ),
        ("https://10.1.2.3/track", "10.0.0.0/8", None),  # a network of its address
        ("https://10.1.2.3/track", "10.0.0.0/16", "http://proxy.internal:3128"),
        ("https://[fd00::5]/track", "fd00::/8", None),
        ("https://api.mixpanel.com/track", "10.0.0.0/8", "http://proxy.internal:3128"),
        ("http://127.0.0.1:8080/track", "", None),  # loopback, whatever NO_PROXY says
    ],
)
def test_no_proxy_forms(url: str, no_proxy: str, chosen: str | None) -> None:
    assert proxy_for(url, {**PROXIES, "no": no_proxy}) == chosen
