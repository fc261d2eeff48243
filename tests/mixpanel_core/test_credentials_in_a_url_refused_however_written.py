"""``user:password@`` in ``api_host`` or ``urls`` is refused however the URL is written.

The check looked for the authority after ``://`` only. ``//user:pw@host`` and ``/user:pw@host``
have none there, yet the client reads them as ``https://user:pw@host``, so the password got
through and was shown in every error, report reason, dead letter and ``repr`` that shows the
URL. So did ``https:\t//user:pw@host``: a tab or line break is removed from a URL before it
is read. Messages that show a URL now also hide a ``user:password@`` in it.
"""

from __future__ import annotations

import pytest

from mixpanel_core.compat import Consumer
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.settings import MixpanelSettings, shown_url

CANARY = "S3CR3T-canary"
WRITTEN = [
    f"//user:{CANARY}@127.0.0.1:8080",
    f"/user:{CANARY}@api.mixpanel.com",
    f"https:///user:{CANARY}@api.mixpanel.com",
    f"user:{CANARY}@api.mixpanel.com",
    f"https://user:{CANARY}@api.mixpanel.com/",
    # A tab or line break is removed from a URL wherever it stands before it is read.
    f"https:\t//user:{CANARY}@api.mixpanel.com",
    f"http:\n//user:{CANARY}@127.0.0.1:8080",
    f" \t//user:{CANARY}@api.mixpanel.com",
]


@pytest.mark.parametrize("api_host", WRITTEN)
def test_api_host_with_credentials_is_refused_without_showing_them(api_host: str) -> None:
    with pytest.raises(ConfigError, match=r"mixpanel\.api_host: credentials in the URL") as caught:
        config_from_mapping({"mixpanel": {"token": "t", "api_host": api_host}}, environ={})
    assert CANARY not in str(caught.value)
    with pytest.raises(ValueError, match="api_host: credentials in the URL") as refused:
        Consumer(api_host=api_host)  # the drop-in, as official code builds it
    assert CANARY not in str(refused.value)


@pytest.mark.parametrize("base", WRITTEN)
def test_an_endpoint_url_with_credentials_is_refused_without_showing_them(base: str) -> None:
    url = f"{base.rstrip('/')}/track"
    with pytest.raises(ValueError, match=r"urls\.track: credentials in the URL") as caught:
        MixpanelSettings(urls={"track": url})
    assert CANARY not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        # A password holding a /, ? or # ends the authority early: read as a host, a port
        # and a path, query or fragment holding the rest of the password.
        f"https://svc:2024/{CANARY}@api.example.com",
        f"https://user:S3/{CANARY}@api.example.com/track",
        f"https://user:S3?{CANARY}@api.example.com/track",
        f"https://user:S3#{CANARY}@api.example.com/track",
    ],
)
def test_any_at_sign_is_refused_without_showing_the_url(url: str) -> None:
    with pytest.raises(ValueError, match="credentials in the URL") as caught:
        MixpanelSettings(urls={"track": url})
    assert CANARY not in str(caught.value)
    assert "S3" not in str(caught.value)


def test_an_at_sign_written_as_percent_40_is_taken() -> None:
    settings = MixpanelSettings(api_host="https://ingest.example.com/a%40b")
    assert settings.api_host == "https://ingest.example.com/a%40b"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://user:{CANARY}@host.example/track?x=1", "https://***@host.example/track?..."),
        (f"//user:{CANARY}@host.example/track", "//***@host.example/track"),
        (f"https:\t//user:{CANARY}@host.example/t#x", "https://***@host.example/t#..."),
        ("https://host.example/a@b?c", "https://host.example/a@b?..."),
        ("http://127.0.0.1:8080/track", "http://127.0.0.1:8080/track"),
    ],
)
def test_a_url_shown_in_a_message_hides_credentials_and_query(url: str, shown: str) -> None:
    assert shown_url(url) == shown
