"""A ``--fix`` plugin that is also enabled in the configuration (so that its ``[plugins.NAME]``
options load) runs once on each record, not again in the configured pipeline
(docs/commands.md): a fix that is not idempotent (here one that counts its runs; in life one
that shifts a time zone or scales a price) would be applied twice to every record it touches."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator
from mixpanel_core.testing import install_distribution

from .conftest import write_config

pytestmark = pytest.mark.integration

COUNT_FIXES = '''\
"""Adds one to the event property ``fixes`` each time it runs."""

from mixpanel_core import hookimpl
from mixpanel_core.messages import Event


class CountFixes:
    @hookimpl
    def mixpanel_enrich(self, message):
        if isinstance(message, Event):
            return message.with_properties({"fixes": message.properties.get("fixes", 0) + 1})
        return None
'''


def test_an_enabled_fix_plugin_runs_once_on_a_record_the_pipeline_enriches(
    tmp_path: Path, mixpanel_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = install_distribution(
        tmp_path / "site",
        "count-fixes",
        {"mixpanel_core.plugins": {"count_fixes": "count_fixes:CountFixes"}},
        {"count_fixes": COUNT_FIXES},
    )
    monkeypatch.syspath_prepend(str(root))
    config = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits", "count_fixes"])
    record = {
        "event": "Signed up",
        "properties": {"distinct_id": "u-1", "time": int(time.time()) - 3600, "$insert_id": "a"},
    }
    # A line send refused as read: the replay runs the configured enrichers on it.
    line = {"endpoint": "import", "stage": "validation", "enriched": False, "record": record}
    dead = tmp_path / "rejected.jsonl"
    dead.write_bytes(orjson.dumps(line) + b"\n")

    code = main(["replay-dead-letters", "--file", str(dead), "--fix", "count_fixes",
                 "--config", str(config)])  # fmt: skip

    assert code == 0
    [stored] = mixpanel_emulator.client.records("import")
    assert stored["properties"]["fixes"] == 1
