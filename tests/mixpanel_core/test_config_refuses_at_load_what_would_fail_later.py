"""Values of the wrong shape are refused when the file is loaded, naming the key and the rule.

Each of these, let through, is not refused at all, or only later: at the first ``track()``
(which builds the transports and plugins), as a raw ``AttributeError`` naming no key, or as an
error about something the file never said. Each test kills a mutant of ``config.py`` or
``schema.py`` that survived every other test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mixpanel_core import ConfigError
from mixpanel_core.config import config_from_mapping, load_config
from mixpanel_core.schema import read
from plugins.redaction import RedactionOptions

ROUTED: dict[str, Any] = {"transports": {"mem": {"type": "memory"}}}


def refused(document: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(document, environ={})
    return str(caught.value)


def test_a_plugin_name_that_is_not_a_string_is_refused_naming_plugins_enabled() -> None:
    message = refused({"plugins": {"enabled": ["mixpanel_limits", 3]}})
    assert message.startswith("plugins.enabled: must be a list of plugin names")


def test_a_transport_type_that_is_not_a_string_is_refused_naming_the_key() -> None:
    message = refused({"transports": {"out": {"type": 3}}})
    assert message == (
        "transports.out.type: must be a string naming an installed transport, not an integer"
    )


def test_a_transport_without_a_type_is_refused_as_missing_it() -> None:
    message = refused({"transports": {"out": {"linger": 1}}})
    assert message == "transports.out.type: required; names an installed transport"


def test_an_unknown_route_endpoint_is_refused_naming_the_route() -> None:
    message = refused({**ROUTED, "routes": [{"transport": "mem", "endpoints": ["trak"]}]})
    assert message.startswith("routes[0].endpoints: 'trak' is not one of track, ")


def test_a_forwarder_that_is_not_a_table_is_a_config_error() -> None:
    # Let through, freezing it fails with AttributeError: no key, no rule, a traceback.
    assert refused({"forwarder": "kafka"}) == "forwarder: must be a table"


def test_a_route_without_its_transport_names_the_missing_key() -> None:
    message = refused({**ROUTED, "routes": [{"kinds": ["event"]}]})
    assert message == "routes[0].transport: required key is missing"


def test_a_string_where_a_list_goes_is_refused_not_split_into_letters() -> None:
    message = refused({**ROUTED, "routes": [{"transport": "mem", "kinds": "event"}]})
    assert message.startswith("routes[0].kinds: must be a list, not a string")
    # Split into letters, `drop = "email"` would drop properties `e`, `m`, ... and send the
    # e-mail address on, without a word.
    with pytest.raises(ConfigError, match=r"^plugins\.redaction\.drop: must be a list, not a"):
        read(RedactionOptions, {"drop": "email"}, "plugins.redaction")


def test_a_url_override_that_is_not_a_string_is_refused_naming_it() -> None:
    message = refused({"mixpanel": {"urls": {"track": 5}}})
    assert message.startswith("mixpanel.urls.track: must be ")
    assert message.endswith("string, not an integer")


def test_an_unquoted_date_for_a_secret_is_refused_naming_the_key(tmp_path: Path) -> None:
    # TOML reads `api_secret = 1979-05-27` as a date: taken as the secret, the text of the
    # date would be sent, not what the operator typed.
    path = tmp_path / "mixpanel.toml"
    path.write_text("[mixpanel]\napi_secret = 1979-05-27\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert message.startswith("mixpanel.api_secret: must be a string")
    assert message.endswith(", not a TOML date")
