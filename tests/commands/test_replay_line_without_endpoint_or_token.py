"""A dead-letter line that does not say its endpoint (written by hand, or by a tool of the
user's) is routed by its record's shape, as ``send`` routes a record (docs/commands.md), and a
record without the project token gets the configured one: a profile update replayed to
``/import``, or without ``$token``, is refused by Mixpanel and the replay cannot deliver it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import TOKEN, write_config, write_ndjson

pytestmark = pytest.mark.integration


def test_a_line_without_endpoint_or_token_reaches_its_endpoint_with_the_token(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    profile = {"$distinct_id": "u-1", "$set": {"plan": "pro"}}
    group = {"$group_key": "company", "$group_id": "acme", "$set": {"size": 10}}
    dead = write_ndjson(tmp_path / "by-hand.jsonl", [{"record": profile}, {"record": group}])
    rejected = tmp_path / "still-failing.jsonl"

    arguments = ["--config", str(config), "--file", str(dead), "--rejected-file", str(rejected)]
    assert main(["replay-dead-letters", *arguments]) == 0

    assert not rejected.exists() or rejected.read_bytes() == b""
    client = mixpanel_emulator.client
    assert [(r["$distinct_id"], r["$token"]) for r in client.records("engage")] == [("u-1", TOKEN)]
    assert [(r["$group_id"], r["$token"]) for r in client.records("groups")] == [("acme", TOKEN)]
