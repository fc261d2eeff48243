"""Third-party transports and plugins are found through entry points, exactly like ours.

The test writes a tiny installed distribution (a ``.dist-info`` with ``entry_points.txt``
plus its module) into a directory on ``sys.path``; importlib.metadata then sees it as it
would see anything pip installed.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core import Mixpanel, registry
from mixpanel_core.cli import main
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import ConfigError
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.registry import (
    PLUGIN_GROUP,
    TRANSPORT_GROUP,
    discover,
    distribution_of,
    load,
)
from mixpanel_core.testing import install_distribution


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    source = textwrap.dedent(
        """
            from mixpanel_core import hookimpl
            from transports.memory import MemoryTransport

            class Stamp:
                @classmethod
                def from_config(cls, context):
                    return cls(context.options.get("value", "stamped"))

                def __init__(self, value):
                    self.value = value

                @hookimpl
                def mixpanel_enrich(self, message):
                    if message.kind == "event":
                        return message.with_properties({"acme": self.value})
                    return None

            class AcmeTransport(MemoryTransport):
                pass
            """
    )
    install_distribution(
        tmp_path,
        "acme-mixpanel",
        {
            "mixpanel_core.plugins": {"stamp": "acme_mixpanel:Stamp"},
            "mixpanel_core.transports": {"acme": "acme_mixpanel:AcmeTransport"},
        },
        {"acme_mixpanel": source},
        version="1.2.3",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("acme_mixpanel", None)


def test_builtins_are_registered_by_entry_point() -> None:
    assert {"console", "memory"} <= set(discover(TRANSPORT_GROUP))
    plugins = discover(PLUGIN_GROUP)
    assert {"mixpanel_limits", "super_properties", "router", "redaction"} <= set(plugins)
    assert distribution_of(plugins["router"]).startswith("mixpanel-core ")


def test_third_party_plugin_and_transport_are_discovered_and_used(third_party: Path) -> None:
    config = config_from_mapping(
        {
            "plugins": {"enabled": ["stamp"], "stamp": {"value": "v1"}},
            "transports": {"out": {"type": "acme"}},
        }
    )
    client = Mixpanel("token", config=config)
    client.track("u-1", "E")
    transport = client.pipeline.transport("out")
    assert type(transport).__name__ == "AcmeTransport"
    assert transport.records()[0]["properties"]["acme"] == "v1"  # type: ignore[attr-defined]


def test_plugins_command_lists_third_party_with_its_distribution(
    third_party: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "acme_mixpanel:AcmeTransport" in out
    assert "acme-mixpanel 1.2.3" in out
    assert "transports.console:ConsoleTransport" in out


def test_discovery_reads_the_metadata_once_per_search_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pipeline built loads its plugins and transports by entry point: the metadata of
    all installed distributions is read once, and again when ``sys.path`` changes."""
    scans: list[str] = []
    real = registry.entry_points

    def counting(group: str) -> Any:
        scans.append(group)
        return real(group=group)

    monkeypatch.setattr(registry, "entry_points", counting)
    registry._scan.cache_clear()
    for _ in range(3):
        Pipeline.from_config(config_from_mapping({"transports": {"m": {"type": "memory"}}}))
        load(TRANSPORT_GROUP, "memory", "transports.m.type")
    assert scans == [PLUGIN_GROUP, TRANSPORT_GROUP]
    monkeypatch.syspath_prepend(str(tmp_path))
    load(TRANSPORT_GROUP, "memory", "transports.m.type")
    assert scans == [PLUGIN_GROUP, TRANSPORT_GROUP, TRANSPORT_GROUP]


def test_a_distribution_installed_after_the_first_look_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed into a directory already on the path (``pip install`` while running): the
    kept answer lacks it, so ``load`` looks again before saying it is not installed."""
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "late" not in discover(TRANSPORT_GROUP)
    install_distribution(
        str(tmp_path),  # a str too (review N1: only a Path was taken, outside pytest's tmp_path)
        "late",
        {"mixpanel_core.transports": {"late": "late_transport:LateTransport"}},
        {"late_transport": "from transports.memory import MemoryTransport as LateTransport\n"},
    )
    try:
        assert load(TRANSPORT_GROUP, "late", "transports.x.type").__name__ == "MemoryTransport"
        with pytest.raises(ConfigError, match="no transport named 'missing' is installed"):
            load(TRANSPORT_GROUP, "missing", "transports.x.type")
    finally:
        sys.modules.pop("late_transport", None)
