"""A `${` in the configuration that starts no well-formed `${VAR}` is an error naming the key and
the rule: sent on as it stands, `"${MIXPANEL_TOKEN"` reached Mixpanel as the token. The error
never quotes the rest of the value, which may be a secret."""

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
        ("${MP-SECRET}", "is not a ${VAR} reference"),
        ("${1ST}", "is not a ${VAR} reference"),
        ("${}", "is not a ${VAR} reference"),
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


def test_the_error_quotes_the_reference_and_nothing_else_of_the_value() -> None:
    with pytest.raises(ConfigError) as closed:
        _token("TopSecretValue${MP-SECRET}AndMore")
    assert "'${MP-SECRET}'" in str(closed.value)
    assert "TopSecret" not in str(closed.value)
    assert "AndMore" not in str(closed.value)

    with pytest.raises(ConfigError) as unclosed:
        _token("TopSecret${Value")
    assert "character 10" in str(unclosed.value)
    assert "TopSecret" not in str(unclosed.value)
    assert "Value" not in str(unclosed.value)


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
