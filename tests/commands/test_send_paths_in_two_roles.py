"""`send` refuses a `--checkpoint` or a `--rejected-file` that is a configured transport's
`dead_letter_path`: the checkpoint, replaced whole after each chunk, would throw the dead
letters away; the rejected file and the transport, both appending, can tear each other's
lines. One line names both, before anything is sent."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration

DEAD_LETTER = {"endpoint": "import", "record": {"event": "E", "properties": {"time": 1}}}


@pytest.mark.parametrize("option", ["--checkpoint", "--rejected-file"])
def test_a_dead_letter_path_is_refused_as_a_file_the_run_writes(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    dead = tmp_path / "dead-letters.jsonl"
    config = write_config(tmp_path, mixpanel_emulator, extra=f'dead_letter_path = "{dead}"\n')
    dead.write_bytes(orjson.dumps(DEAD_LETTER) + b"\n")
    before = dead.read_bytes()
    source = write_ndjson(tmp_path / "events.ndjson", events(5))

    code = main(["send", str(source), "--config", str(config), option, str(dead)])

    assert code == 1
    err = capsys.readouterr().err
    error = err.strip().splitlines()[-1]
    assert error.startswith(f"mixpanel-core: error: {option} {dead} is ")
    assert "transports.direct.dead_letter_path" in error
    assert not [line for line in err.splitlines() if line.startswith("sent ")]
    assert dead.read_bytes() == before
    assert mixpanel_emulator.client.records("import") == []
