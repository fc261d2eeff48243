"""A `${` in the configuration that starts no well-formed `${VAR}` is an error naming the key and
the rule: sent on as it stands, `"${MIXPANEL_TOKEN"` reached Mixpanel as the token. The error
names the `${` by its position and quotes nothing of the value, which may be a secret: quoted,
the `${...}` of `"q${Zx9!kP2#vL8@wR5}"` was most of a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.config import config_from_mapping, load_config
from mixpanel_core.errors import ConfigError

ENVIRON = {"MIXPANEL_TOKEN": "token-from-env", "MP_SECRET": "secret-from-env"}


def _token(value: str) -> str | None:
    return config_from_mapping({"mixpanel": {"token": value}}, ENVIRON).mixpanel.token


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("${MIXPANEL_TOKEN", "has no closing }"),
        ("prefix-${MIXPANEL_TOKEN", "has no closing }"),
        ("${MP-SECRET}", "does not start a ${VAR} reference"),
        ("${1ST}", "does not start a ${VAR} reference"),
        ("${}", "does not start a ${VAR} reference"),
        ("${MIXPANEL_TOKEN}${", "has no closing }"),
    ],
)
def test_a_malformed_reference_is_an_error_naming_the_key_and_the_rule(
    value: str, rule: str
) -> None:
    with pytest.raises(ConfigError, match=r"^mixpanel\.token: ") as caught:
        _token(value)
    assert rule in str(caught.value)
    assert "$${ for a literal ${" in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "position"),
    [
        ("token", "TopSecretValue${MP-SECRET}AndMore", 15),
        ("token", "TopSecret${V4lue", 10),
        ("service_account_secret", "q${Zx9!kP2#vL8@wR5}", 2),
        ("api_secret", "${s3cr3t-v4lue}", 1),
    ],
)
def test_the_error_names_the_reference_by_its_position_and_quotes_nothing_of_the_value(
    key: str, value: str, position: int
) -> None:
    with pytest.raises(ConfigError, match=rf"^mixpanel\.{key}: ") as caught:
        config_from_mapping({"mixpanel": {"token": "t", key: value}}, ENVIRON)
    message = str(caught.value)
    assert f"the ${{ at character {position} of the value" in message
    # No run of four characters of the value after its ${ appears in the error.
    rest = value[position + 1 :]
    assert not [rest[i : i + 4] for i in range(len(rest) - 3) if rest[i : i + 4] in message]
    assert "TopSecret" not in message


def test_a_malformed_reference_in_a_nested_table_names_its_full_key() -> None:
    data = {"transports": {"out": {"type": "console", "headers": ["ok", "${BROKEN"]}}}
    with pytest.raises(ConfigError, match=r"^transports\.out\.headers\[1\]: "):
        config_from_mapping(data, ENVIRON)


@pytest.mark.parametrize(
    ("value", "expanded"),
    [
        ("${MIXPANEL_TOKEN}", "token-from-env"),
        ("$${MIXPANEL_TOKEN", "${MIXPANEL_TOKEN"),  # the escape still makes a literal ${
        ("$${MP-SECRET}", "${MP-SECRET}"),
        ("a$$b", "a$b"),
        ("$HOME and $", "$HOME and $"),  # a $ not followed by { is itself
        ("{MIXPANEL_TOKEN}", "{MIXPANEL_TOKEN}"),
        ("$$${MIXPANEL_TOKEN}", "$token-from-env"),
    ],
)
def test_well_formed_references_and_escapes_keep_their_meaning(value: str, expanded: str) -> None:
    assert _token(value) == expanded


def test_the_reviewed_file_is_refused_by_load_config(tmp_path: Path) -> None:
    path = tmp_path / "interp.toml"
    path.write_text(
        '[mixpanel]\ntoken = "${MIXPANEL_TOKEN"\napi_secret = "${MP-SECRET}"\n'
        '[transports.d]\ntype = "http"\n'
    )
    with pytest.raises(ConfigError, match=r"^mixpanel\.token: "):
        load_config(path, ENVIRON)
