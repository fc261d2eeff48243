"""A checkpoint ``send`` did not write in its own format (another version, or none) is refused
with exit 1, naming the file, before anything is sent: read as if it were one, the counts in it
could mean anything, and the run would skip records it never sent."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.commands.checkpoint import file_identity
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("version", [{"version": 3}, {}], ids=["version 3", "no version"])
def test_a_checkpoint_of_another_version_is_refused_before_anything_is_sent(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    version: dict[str, int],
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", events(5))
    checkpoint = tmp_path / "send.checkpoint"
    files = {file_identity(source): {"path": str(source), "confirmed": 3, "complete": False}}
    checkpoint.write_bytes(orjson.dumps({**version, "files": files}))
    before = checkpoint.read_bytes()

    code = main(["send", str(source), "--config", str(config), "--checkpoint", str(checkpoint)])

    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (
        f"mixpanel-core: error: {checkpoint}: not a version 2 checkpoint of mixpanel-core send or "
        "replay-dead-letters; "
        "delete it to start over"
    )
    assert checkpoint.read_bytes() == before
    assert mixpanel_emulator.client.records("import") == []
