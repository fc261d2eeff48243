"""Loading and checking mixpanel.toml: interpolation, key paths in errors, secrets kept hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core import ConfigError, Mixpanel
from mixpanel_core.config import config_from_mapping, load_config
from mixpanel_core.secrets import Secret

FULL = """
[mixpanel]
token = "${MP_TOKEN}"
api_host = "api-eu.mixpanel.com"
service_account_username = "sa"
service_account_secret = "${MP_SECRET}"
project_id = "42"

[pipeline]
on_invalid = "drop"

[plugins]
enabled = ["mixpanel_limits", "super_properties"]
[plugins.super_properties]
properties = { app = "checkout", env = "prod" }

[transports.mem]
type = "memory"
[transports.out]
type = "console"
stream = "stderr"

[[routes]]
kinds = ["people", "group"]
transport = "out"
[[routes]]
transport = "mem"
"""

ENV = {"MP_TOKEN": "tok", "MP_SECRET": "very-secret-value"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mixpanel.toml"
    path.write_text(text)
    return path


def test_full_file_loads_with_environment_interpolation(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), ENV)
    assert config.mixpanel.token == "tok"
    assert config.mixpanel.service_account_secret == Secret("very-secret-value")
    assert config.plugins == ("mixpanel_limits", "super_properties", "router")
    assert config.transports["out"].options == {"stream": "stderr"}
    assert [r.transports for r in config.routes] == [("out",), ("mem",)]
    assert config.pipeline.on_invalid == "drop"


def test_secrets_never_appear_in_reprs(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), ENV)
    assert "very-secret-value" not in repr(config)
    assert "very-secret-value" not in str(config.mixpanel)


KAFKA_WITH_PASSWORDS = """
[mixpanel]
token = "t"
[plugins]
enabled = ["redaction"]
[plugins.redaction]
hash = ["email"]
salt = "${SALT}"
[transports.bus]
type = "kafka"
bootstrap_servers = "k:9092"
topic = "mixpanel"
producer = { security_protocol = "SASL_SSL", sasl_plain_password = "${KAFKA_PASSWORD}" }
[forwarder]
source = "bus"
dead_letter_topic = "dead"
consumer = { sasl_plain_password = "${KAFKA_PASSWORD}" }
"""


def test_raw_tables_show_their_keys_but_never_their_values(tmp_path: Path) -> None:
    # Transport options, plugin options and [forwarder] are kept as raw tables until a
    # transport, plugin or the forwarder reads them: SASL passwords and salts live there.
    env = {"SALT": "salt-secret-value", "KAFKA_PASSWORD": "kafka-secret-value"}
    config = load_config(write(tmp_path, KAFKA_WITH_PASSWORDS), env)
    shown = repr(config)
    for secret in env.values():
        assert secret not in shown
        assert secret not in repr(config.transports["bus"])
    assert "'producer': ..." in shown
    assert "'redaction': ..." in shown
    assert "'consumer': ..." in shown
    assert config.transports["bus"].options["producer"]["sasl_plain_password"] == (
        "kafka-secret-value"
    )


def test_missing_environment_variable_names_the_variable_and_key(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"mixpanel\.service_account_secret: environment variable MP_SECRET is not set",
    ):
        load_config(write(tmp_path, FULL), {"MP_TOKEN": "tok"})


def test_dollar_dollar_is_a_literal_dollar() -> None:
    config = config_from_mapping({"mixpanel": {"token": "a$${B}c"}}, {})
    assert config.mixpanel.token == "a${B}c"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"mixpanel": {"tokn": "x"}}, r"mixpanel\.tokn: unknown key"),
        ({"mixpanel": {"token": 5}}, r"mixpanel\.token: must be a string, not an integer"),
        (
            {"pipeline": {"on_invalid": "ignore"}},
            r"pipeline\.on_invalid: must be one of 'raise', 'drop'",
        ),
        ({"mixpanl": {}}, r"mixpanl: unknown section"),
        ({"transports": {"a": {"stream": "x"}}}, r"transports\.a\.type: required"),
        ({"plugins": {"enabled": "mixpanel_limits"}}, r"plugins\.enabled: must be a list"),
        (
            {"plugins": {"redaction": {"drop": ["x"]}}},
            r"plugins\.redaction: options for a plugin that is not enabled",
        ),
        (  # an enabled plugin's options that are no table (review R23)
            {"plugins": {"enabled": ["super_properties"], "super_properties": "x"}},
            r"^plugins\.super_properties: must be a table of the plugin's options$",
        ),
        (  # a misspelled "enabled" (review N1): it was taken for a plugin's table
            {"plugins": {"enable": ["super_properties"]}},
            r"^plugins\.enable: unknown key; \[plugins\] takes enabled \(a list of plugin names\)",
        ),
        (
            {"transports": {"a": {"type": "memory"}}, "routes": [{"transport": "b"}]},
            r"routes\[0\]\.transport: no transport named 'b'",
        ),
        (
            {
                "transports": {"a": {"type": "memory"}},
                "routes": [{"transport": "a", "kinds": ["evnt"]}],
            },
            r"routes\[0\]\.kinds: 'evnt' is not one of",
        ),
        ({"mixpanel": {"urls": {"trak": "http://x"}}}, r"urls\.trak: unknown endpoint"),
    ],
)
def test_bad_configuration_names_the_key_path(document: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(document, {})


def test_transport_option_errors_name_the_key_path() -> None:
    config = config_from_mapping({"transports": {"out": {"type": "console", "colour": True}}})
    with pytest.raises(ConfigError, match=r"transports\.out\.colour: unknown key"):
        Mixpanel("t", config=config).pipeline.build_all()


def test_unknown_transport_type_lists_installed_ones() -> None:
    config = config_from_mapping({"transports": {"x": {"type": "carrier-pigeon"}}})
    expected = r"transports\.x\.type: no transport named 'carrier-pigeon'.*installed: .*console"
    with pytest.raises(ConfigError, match=expected):
        Mixpanel("t", config=config).pipeline.build_all()


def test_unknown_plugin_lists_installed_ones() -> None:
    config = config_from_mapping({"plugins": {"enabled": ["nope"]}})
    with pytest.raises(ConfigError, match=r"no plugin named 'nope'.*installed: .*mixpanel_limits"):
        Mixpanel("t", config=config)


def test_from_config_builds_a_working_client(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    client = Mixpanel.from_config(path, ENV)
    client.track("user-1", "Signed up", {"env": "test"})
    client.people_set("user-1", {"a": 1})
    mem = client.pipeline.transport("mem")
    [event] = mem.records()  # type: ignore[attr-defined]
    assert event["properties"]["app"] == "checkout"
    assert event["properties"]["env"] == "test"  # the caller wins over a super property


def test_from_config_requires_a_token(tmp_path: Path) -> None:
    path = write(tmp_path, '[transports.m]\ntype = "memory"\n')
    with pytest.raises(ConfigError, match=r"mixpanel\.token: required"):
        Mixpanel.from_config(path, {})


def test_missing_file_and_bad_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[mixpanel\n"))


def test_config_path_comes_from_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[mixpanel]\ntoken = "from-env-path"\n')
    monkeypatch.setenv("MIXPANEL_CORE_CONFIG", str(path))
    assert load_config().mixpanel.token == "from-env-path"
