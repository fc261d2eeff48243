"""A check across a table that names the key it refuses is said at that key's path, as an
unknown key or a wrong type is (``transports.out.streem: unknown key``): it read
``transports.out: linger: must be ...`` and ``mixpanel: urls.trak: ...`` (found by a review)."""

from __future__ import annotations

from typing import Any

import pytest

from mixpanel_core.buffered_http_options import BufferedHttpOptions
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.schema import read


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (
            {"mixpanel": {"urls": {"trak": "http://127.0.0.1:1/t"}}},
            "mixpanel.urls.trak: unknown endpoint; use track, import, engage or groups",
        ),
        ({"mixpanel": {"api_secret": ""}}, "mixpanel.api_secret: must not be empty"),
    ],
)
def test_the_key_a_check_refuses_is_named_by_its_path(data: dict[str, Any], said: str) -> None:
    data = {**data, "mixpanel": {"token": "t", **data.get("mixpanel", {})}}
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(data, environ={})
    assert str(caught.value).startswith(said)


def test_a_transport_option_a_check_refuses_is_named_by_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        read(BufferedHttpOptions, {"linger": 100_000.0}, "transports.out")
    assert str(caught.value).startswith(
        "transports.out.linger: must be 0 or more and at most 86400 seconds (a day), not "
    )
