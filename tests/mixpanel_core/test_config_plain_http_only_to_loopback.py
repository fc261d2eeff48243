"""Plain ``http://`` is taken only to loopback unless ``allow_insecure_http`` is true: a host
name that merely starts like a loopback address (``127.0.0.1.evil.com``, DNS anyone can
point anywhere) is not loopback, and is refused when the file is loaded. Kills a mutant of
``is_loopback`` taking any name starting with ``127.``, which survived every test.
"""

from __future__ import annotations

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.config import config_from_mapping

LOOKALIKES = [
    "http://127.0.0.1.evil.com",
    "http://127.0.0.1.nip.io:8080",
    "http://localhost.evil.com",
    "http://127.evil.com",
]


@pytest.mark.parametrize("api_host", LOOKALIKES)
def test_a_host_that_only_looks_like_loopback_is_refused(api_host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"mixpanel": {"api_host": api_host}}, environ={})
    assert str(caught.value).startswith(f"mixpanel.api_host: {api_host!r} would send")


@pytest.mark.parametrize("url", [f"{host}/track" for host in LOOKALIKES])
def test_an_endpoint_url_that_only_looks_like_loopback_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^mixpanel\.urls\.track: .* would send"):
        config_from_mapping({"mixpanel": {"urls": {"track": url}}}, environ={})


@pytest.mark.parametrize(
    "api_host", ["http://127.0.0.1:8080", "http://127.3.4.5", "http://localhost", "http://[::1]"]
)
def test_loopback_itself_is_taken(api_host: str) -> None:
    config = config_from_mapping({"mixpanel": {"api_host": api_host}}, environ={})
    assert config.mixpanel.api_host == api_host


def test_a_lookalike_is_taken_once_insecure_http_is_allowed() -> None:
    mixpanel = {"api_host": LOOKALIKES[0], "allow_insecure_http": True}
    assert (
        config_from_mapping({"mixpanel": mixpanel}, environ={}).mixpanel.api_host == (LOOKALIKES[0])
    )
