"""``schema.read`` with the list hints a plugin's author writes: ``list[str]`` and
``Sequence[str]`` as well as the ``tuple[str, ...]`` of the built-in options.

Review N1: docs/plugins.md suggested ``setting(factory=list, ...)``, and a key typed
``list[str]`` failed the plugin's build with ``TypeError: isinstance() argument 2 cannot be
a parameterized generic``; bare ``list`` said "must be a list, not a list".
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence

import attrs
import pytest

from mixpanel_core import ConfigError
from mixpanel_core.config import config_from_mapping
from mixpanel_core.schema import describe, read, setting


@attrs.frozen
class TagOptions:
    tags: list[str] = setting(factory=list, doc="Tags.")
    codes: Sequence[int] = setting((), doc="Codes.")
    anything: list = setting(factory=list, doc="Any values.")  # type: ignore[type-arg]
    fixed: tuple[str, ...] = setting((), doc="Names.")


@attrs.frozen
class SetOptions:
    tags: set[str] = setting(factory=set, doc="Not a hint read() takes.")


def options(cls: type, text: str) -> object:
    """``text`` as a ``[plugins.tags]`` table, read as the plugin reads its context.options."""
    document = tomllib.loads(f'[plugins]\nenabled = ["tags"]\n[plugins.tags]\n{text}\n')
    table = config_from_mapping(document).plugin_options["tags"]
    return read(cls, table, "plugins.tags")


def test_list_and_sequence_hints_read_a_toml_list() -> None:
    read_back = options(
        TagOptions, 'tags = ["a", "b"]\ncodes = [1, 2]\nanything = [1, "x"]\nfixed = ["n"]'
    )
    assert read_back == TagOptions(tags=["a", "b"], codes=(1, 2), anything=[1, "x"], fixed=("n",))
    assert options(TagOptions, "") == TagOptions()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('tags = "a"', r"^plugins\.tags\.tags: must be a list, not a string$"),
        ('tags = ["a", 1]', r"^plugins\.tags\.tags\[1\]: must be a string, not an integer$"),
        ('codes = ["x"]', r"^plugins\.tags\.codes\[0\]: must be an integer, not a string$"),
        ("anything = 3", r"^plugins\.tags\.anything: must be a list, not an integer$"),
    ],
)
def test_a_value_a_list_hint_refuses_is_named_with_its_rule(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        options(TagOptions, text)


def test_a_hint_read_does_not_take_is_said_to_the_author_naming_the_key() -> None:
    with pytest.raises(TypeError, match=r"^plugins\.tags\.tags: the option's type hint set\[str\]"):
        options(SetOptions, 'tags = ["a"]')


def test_the_reference_names_the_list_hints_as_lists() -> None:
    types = {key: kind for key, kind, _default, _doc in describe(TagOptions)}
    assert types == {
        "tags": "list of string",
        "codes": "list of integer",
        "anything": "list of Any",
        "fixed": "list of string",
    }
