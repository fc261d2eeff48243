"""A file whose name is not UTF-8 (its bytes held as lone surrogates, as ``os.fsdecode`` gives
them) is checkpointed like any other: writing its name stopped every run after the records
were sent, so no checkpoint was ever written and every rerun sent them all again."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration


def test_a_file_named_in_bytes_that_are_not_utf8_is_checkpointed_and_not_sent_again(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / os.fsdecode(b"events-\xff.ndjson"), events(3))
    checkpoint = tmp_path / "send.checkpoint"
    command = ["send", str(source), "--config", str(config), "--checkpoint", str(checkpoint)]

    assert main(command) == 0
    assert main(command) == 0

    assert len(mixpanel_emulator.records("import")) == 3, "the rerun sent nothing again"
    [entry] = orjson.loads(checkpoint.read_bytes())["files"].values()
    assert entry["path"].endswith("events-\\xff.ndjson")
    assert (entry["confirmed"], entry["complete"]) == (3, True)
