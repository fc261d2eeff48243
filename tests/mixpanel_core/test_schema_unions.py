"""``schema.read`` with union keys: every option is tried before one is refused, and a refusal
says the most specific thing there is to say."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping

import attrs
import pytest

from mixpanel_core import ConfigError
from mixpanel_core.config import config_from_mapping
from mixpanel_core.schema import read, setting


@attrs.frozen
class ByName:
    name: str = setting(doc="A name.")


@attrs.frozen
class ById:
    id: int = setting(doc="A number.")


@attrs.frozen
class AcmeOptions:
    """A third-party plugin's options, with unions of two options of the same shape."""

    ids: tuple[int, ...] | tuple[str, ...] = setting((), doc="Numbers or names.")
    target: ByName | ById | None = setting(None, doc="A table of either shape.")
    labels: Mapping[str, int] | Mapping[str, str] = setting(factory=dict, doc="Either kind.")
    wait: float | None = setting(None, doc="Seconds, or none.")


def read_acme(text: str) -> AcmeOptions:
    """``text`` as a ``[plugins.acme]`` table, read as the plugin reads its context.options."""
    document = tomllib.loads(f'[plugins]\nenabled = ["acme"]\n[plugins.acme]\n{text}\n')
    config = config_from_mapping(document)
    return read(AcmeOptions, config.plugin_options["acme"], "plugins.acme")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('ids = ["a", "b"]', AcmeOptions(ids=("a", "b"))),
        ("target = { id = 3 }", AcmeOptions(target=ById(3))),
        ('labels = { a = "b" }', AcmeOptions(labels={"a": "b"})),
        ("ids = [1, 2]", AcmeOptions(ids=(1, 2))),
        ('target = { name = "x" }', AcmeOptions(target=ByName("x"))),
        ("labels = { a = 1 }", AcmeOptions(labels={"a": 1})),
    ],
)
def test_the_second_of_two_options_of_the_same_shape_is_tried(
    text: str, expected: AcmeOptions
) -> None:
    """The first three were refused with the first option's error ("ids[0]: must be integer")
    since the same-shape rule of a40a115; they loaded before it."""
    assert read_acme(text) == expected


def test_when_every_option_of_the_same_shape_fails_the_union_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        read_acme('ids = [1, "b"]')
    assert str(caught.value) == (
        "plugins.acme.ids: must be a list of integers or a list of strings, not a list"
    )


def test_when_only_one_option_takes_the_shape_its_error_names_the_item() -> None:
    """a40a115's gain, kept: "string | list of string" given a list names the wrong item."""
    document = {"transports": {"m": {"type": "memory"}}, "routes": [{"transport": ["m", 5]}]}
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(document)
    assert str(caught.value) == "routes[0].transport[1]: must be a string, not an integer"


def test_an_integer_too_large_for_a_number_or_none_key_says_so() -> None:
    """It said "must be number, not an integer": the union hid the float's own error."""
    with pytest.raises(ConfigError) as caught:
        read_acme("wait = " + "9" * 400)
    assert str(caught.value) == (
        "plugins.acme.wait: must be a number; this integer is too large for one (over 1.8e308)"
    )


def test_an_integer_for_a_number_or_none_key_is_a_number() -> None:
    assert read_acme("wait = 5").wait == 5.0
