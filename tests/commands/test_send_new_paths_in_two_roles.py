"""Two paths to one file that does not exist yet (one absolute, one relative, or through
``..``) are one file to ``send``: the run would create the rejected file, then replace it
with the checkpoint after the first chunk (its rejected lines gone), and every rejected line
after that would go to a file no longer in any directory. Refused before anything is sent, as
for a file that exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("spelled", ["out.jsonl", "runs/../out.jsonl"])
def test_a_new_file_named_two_ways_is_refused_as_checkpoint_and_rejected_file(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    spelled: str,
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", events(5))
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    absolute = tmp_path / "out.jsonl"

    arguments = ["--rejected-file", str(absolute), "--checkpoint", spelled]
    code = main(["send", str(source), "--config", str(config), *arguments])

    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"mixpanel-core: error: --checkpoint {spelled} is --rejected-file")
    assert not absolute.exists()
    assert mixpanel_emulator.client.records("import") == []
