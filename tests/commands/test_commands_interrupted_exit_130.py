"""A command stopped by SIGTERM (or Ctrl-C) exits 130, as docs/commands.md says, after its
summary: a wrapper script or a scheduler tells an interrupted run (rerun it to resume) from one
that finished with records undelivered (1) only by that code."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("command", ["send", "replay-dead-letters"])
def test_a_command_stopped_by_sigterm_exits_130_after_its_summary(
    tmp_path: Path, mixpanel_emulator: Emulator, command: str
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, transport="http")
    if command == "send":
        source = write_ndjson(tmp_path / "events.ndjson", events(5))
        arguments = [str(source), "--checkpoint", str(tmp_path / "send.checkpoint")]
    else:
        lines = [{"endpoint": "import", "record": r} for r in events(5)]
        arguments = ["--file", str(write_ndjson(tmp_path / "dead.jsonl", lines))]
    client = mixpanel_emulator.client
    client.stall()  # the first request is held: the command is mid-run when stopped
    process = subprocess.Popen(
        [sys.executable, "-m", "mixpanel_core.cli", command, *arguments, "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while client.faults()["stalled_requests"] < 1:
            assert process.poll() is None, "the command ended before reaching the emulator"
            assert time.monotonic() < deadline, "the command never reached the emulator"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
    finally:
        client.release()
        _, err = process.communicate(timeout=30)

    assert process.returncode == 130, err
    assert [line for line in err.splitlines() if line.startswith(("sent ", "replayed "))], err
