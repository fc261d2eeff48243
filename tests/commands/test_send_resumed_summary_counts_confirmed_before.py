"""A run resumed part way into a file says how many of its records an earlier run confirmed:
the summary of a resume that printed only what it sent would look like records went missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson
from .test_send import backfill, stop_after

pytestmark = pytest.mark.integration


def test_a_run_resumed_mid_file_counts_the_records_confirmed_before(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, transport="http")
    source = write_ndjson(tmp_path / "events.ndjson", events(25))
    checkpoint = tmp_path / "send.checkpoint"
    stopped = backfill(config, [source], checkpoint=checkpoint, batch_size=10)
    stopped.after_record = stop_after(15)  # the first chunk confirmed, the second not
    with pytest.raises(KeyboardInterrupt):
        stopped.run()
    capsys.readouterr()

    arguments = ["--config", str(config), "--checkpoint", str(checkpoint), "--batch-size", "10"]
    assert main(["send", str(source), *arguments]) == 0

    err = capsys.readouterr().err
    assert (
        "sent 15 records from 1 file(s): 15 accepted, 0 rejected or invalid, 10 confirmed before"
        in err
    )
    assert mixpanel_emulator.client.stats()["unique_events"] == 25
