"""What an entry point (or ``extra_plugins``) may name, checked as the pipeline is built, with
the plugins installed through real entry points.

A factory function, ``None`` or a string, and a ``from_config`` that returned ``None``, were
registered as plugins with no hooks: the enrichment they were for never ran, and ``config
check`` said ``ok``. A class registered itself rather than an instance, and a keyword-only
parameter, passed the checks and then failed at every message ("missing 1 required
positional argument: 'message'", although it was given); a positional-only parameter of an
implementation taking some of its hook's parameters was passed by name, and refused.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixpanel_core import ConfigError, Message, Mixpanel, Pipeline, hookimpl
from mixpanel_core.config import config_from_mapping
from mixpanel_core.testing import MemoryTransport, ReportCollector, install_distribution

SOURCE = textwrap.dedent(
    """
    from mixpanel_core import hookimpl

    class Tenant:
        @hookimpl
        def mixpanel_enrich(self, message):
            return message.with_properties({"tenant": "acme"})

    def make():
        return Tenant()

    class Settings(dict):
        # A plugin that is a dict of its own settings: a dict, and a plugin.

        @hookimpl
        def mixpanel_enrich(self, message):
            return message.with_properties({"tenant": self["tenant"]})

    SETTINGS = Settings(tenant="acme")

    NOTHING = None
    TEXT = "acme_plugin:Tenant"

    class ForgotReturn:
        @classmethod
        def from_config(cls, context):
            cls()

    class ReturnsClass(Tenant):
        @classmethod
        def from_config(cls, context):
            return cls
    """
)

TARGETS = {
    "tenant": "acme_plugin:Tenant",
    "settings": "acme_plugin:SETTINGS",
    "factory": "acme_plugin:make",
    "nothing": "acme_plugin:NOTHING",
    "text": "acme_plugin:TEXT",
    "forgot_return": "acme_plugin:ForgotReturn",
    "returns_class": "acme_plugin:ReturnsClass",
}


@pytest.fixture(autouse=True)
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    install_distribution(
        tmp_path, "acme-plugin", {"mixpanel_core.plugins": TARGETS}, {"acme_plugin": SOURCE}
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("acme_plugin", None)


def client_of(plugin: str) -> tuple[Mixpanel, MemoryTransport]:
    transport = MemoryTransport()
    config = config_from_mapping({"plugins": {"enabled": [plugin]}})
    pipeline = Pipeline.from_config(config, transports={"default": transport})
    return Mixpanel("tok", pipeline=pipeline), transport


@pytest.mark.parametrize("plugin", ["tenant", "settings"])
def test_a_plugin_class_or_instance_named_by_its_entry_point_runs(plugin: str) -> None:
    """An instance of a subclass of dict is no dict given for a plugin."""
    client, transport = client_of(plugin)
    client.track("user-1", "Ev")
    assert [m.properties["tenant"] for m in transport.messages] == ["acme"]


@pytest.mark.parametrize(
    ("plugin", "said"),
    [
        ("factory", "names the function 'make' (a factory is not called), which is no plugin"),
        ("nothing", "names None, which is no plugin"),
        ("text", "names a str, which is no plugin"),
        ("forgot_return", "ForgotReturn.from_config returned None"),
        ("returns_class", "mixpanel_enrich is a method of a class registered as it is"),
    ],
)
def test_what_cannot_be_a_plugin_is_refused_when_the_pipeline_is_built(
    plugin: str, said: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        client_of(plugin)
    assert str(caught.value).startswith(f"plugins.{plugin}: "), caught.value
    assert said in str(caught.value)


def test_a_class_given_for_an_instance_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^plugins\.reports: mixpanel_delivered is a method"):
        Pipeline([("reports", ReportCollector)], {"default": MemoryTransport()})


def test_a_keyword_only_parameter_is_refused() -> None:
    class KeywordOnly:
        @hookimpl
        def mixpanel_route(self, *, message: Message) -> list[str]:
            return ["default"]

    with pytest.raises(ConfigError, match=r"takes 'message' keyword-only, which is never passed"):
        Pipeline([("kw", KeywordOnly())], {"default": MemoryTransport()})


def test_positional_only_parameters_of_an_implementation_taking_some_are_passed() -> None:
    class PositionalOnly:
        @hookimpl
        def mixpanel_route(self, message: Message, /) -> list[str]:
            return ["second"]

    first, second = MemoryTransport(), MemoryTransport()
    pipeline = Pipeline([("route", PositionalOnly())], {"default": first, "second": second})
    client = Mixpanel("tok", pipeline=pipeline)

    client.track("user-1", "Ev")

    assert (len(first.messages), len(second.messages)) == (0, 1)
