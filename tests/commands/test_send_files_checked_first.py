"""Every `FILE` of `send` is identified before anything is sent: a missing file or a pipe given
after others was refused only when its turn came, once the files before it were sent in full
(docs/commands.md, *Input files*: refused with exit 1 before anything is read)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["missing", "fifo", "directory"])
def test_a_file_that_cannot_be_sent_is_refused_before_the_files_before_it_are_sent(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    sent = write_ndjson(tmp_path / "events.ndjson", events(3))
    bad = tmp_path / "second.ndjson"
    if kind == "fifo":
        os.mkfifo(bad)
    elif kind == "directory":
        bad.mkdir()

    assert main(["send", str(sent), str(bad), "--config", str(config)]) == 1

    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"mixpanel-core: error: {bad}: ")
    assert not [line for line in err.splitlines() if line.startswith("sent ")]
    assert mixpanel_emulator.client.stats()["requests"] == {}


@pytest.mark.parametrize("where", ["missing-folder", "folder-is-a-file"])
def test_a_checkpoint_that_cannot_be_written_is_refused_before_anything_is_sent(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """It stopped the run after its first chunk was sent."""
    config = write_config(tmp_path, mixpanel_emulator)
    sent = write_ndjson(tmp_path / "events.ndjson", events(3))
    if where == "folder-is-a-file":
        (tmp_path / "not-a-folder").write_text("")
        checkpoint = tmp_path / "not-a-folder" / "send.checkpoint"
    else:
        checkpoint = tmp_path / "no-such-folder" / "send.checkpoint"

    argv = ["send", str(sent), "--config", str(config), "--checkpoint", str(checkpoint)]
    assert main([*argv, "--batch-size", "1"]) == 1

    err = capsys.readouterr().err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(f"mixpanel-core: error: {checkpoint}: cannot write the checkpoint: ")
    )
    assert mixpanel_emulator.client.stats()["requests"] == {}
