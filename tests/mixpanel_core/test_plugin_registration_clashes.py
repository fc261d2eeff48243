"""Clashes in what is registered are ``ConfigError``s naming the key and saying what to do:
one distribution declaring a plugin name twice (it was told to "uninstall all but one" of
itself), and ``extra_plugins`` naming ``router`` or giving one object twice (pluggy's raw
``ValueError``, quoting the object's repr)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixpanel_core import ConfigError, Pipeline
from mixpanel_core.config import config_from_mapping
from mixpanel_core.testing import MemoryTransport, ReportCollector, install_distribution

SOURCE = """
from mixpanel_core import hookimpl

class Tenant:
    @hookimpl
    def mixpanel_enrich(self, message):
        return None

class Other(Tenant):
    pass
"""


@pytest.fixture
def declared_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    install_distribution(
        tmp_path,
        "acme-twice",
        {"mixpanel_core.plugins": {"tenant": "acme_twice:Tenant"}},
        {"acme_twice": SOURCE},
    )
    [info] = tmp_path.glob("*.dist-info")
    with (info / "entry_points.txt").open("a") as entry_points:
        entry_points.write("tenant = acme_twice:Other\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("acme_twice", None)


def test_one_distribution_declaring_a_name_twice_is_said_to_be_at_fault(
    declared_twice: None,
) -> None:
    config = config_from_mapping({"plugins": {"enabled": ["tenant"]}})
    with pytest.raises(ConfigError) as caught:
        Pipeline.from_config(config, transports={"default": MemoryTransport()})
    said = str(caught.value)
    assert said.startswith("plugins.enabled: tenant: acme-twice 1.0 declares 2 plugins named")
    assert "acme_twice:Tenant, acme_twice:Other" in said
    assert "uninstall" not in said


def test_an_extra_plugin_named_router_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"^plugins\.router: a plugin of that name is registered"):
        Pipeline.from_config(
            config_from_mapping({}),
            transports={"default": MemoryTransport()},
            extra_plugins=[("router", ReportCollector())],
        )


def test_one_object_given_twice_is_refused_naming_both() -> None:
    collector = ReportCollector()
    with pytest.raises(
        ConfigError, match=r"^plugins\.b: this very object is registered already, as 'a'"
    ):
        Pipeline.from_config(
            config_from_mapping({}),
            transports={"default": MemoryTransport()},
            extra_plugins=[("a", collector), ("b", collector)],
        )
