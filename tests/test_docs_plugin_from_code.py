"""The docs' way to register a plugin object from code works as written (review R44 F2: no
page showed it, and ``AddRegion`` of docs/hooks.md cannot be built by an entry point)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mixpanel_core.emulator import Emulator

from .test_docs_hook_examples import BLOCK, DOCS, example

pytestmark = pytest.mark.integration


def test_the_registered_from_code_example_sends_with_its_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mixpanel_emulator: Emulator
) -> None:
    [code] = [
        textwrap.dedent(block)
        for _indent, block in BLOCK.findall((DOCS / "plugins.md").read_text())
        if "extra_plugins=" in block and "load_config" in block
    ]
    (tmp_path / "mixpanel.toml").write_text(
        f'[mixpanel]\ntoken = "emulator-token"\napi_host = "{mixpanel_emulator.base_url}"\n\n'
        '[transports.direct]\ntype = "http"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MIXPANEL_CORE_CONFIG", raising=False)

    exec(code, {"AddRegion": example("hooks.md", "AddRegion")})

    [event] = mixpanel_emulator.client.records("track")
    assert event["event"] == "Signed up"
    assert event["properties"]["distinct_id"] == "user-1"
    assert event["properties"]["region"] == "eu"
