"""R71 F4: a same-size correction in the middle of a file over 2 MiB makes it another file. Known
by its size, first MiB and last MiB alone, the corrected dead-letter file was taken for the one
replayed before: "confirmed by an earlier replay; skipped", exit 0, and the corrected letter
never sent. A checkpoint written under that identity (version 1) is refused, saying why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.commands.checkpoint import SAMPLE_BYTES, file_identity
from mixpanel_core.emulator import Emulator

from .conftest import events, read_lines, write_config, write_ndjson

pytestmark = pytest.mark.integration

COUNT = 3000
MIDDLE = 1500


def dead_letters() -> list[dict[str, Any]]:
    """Over 2 MiB of dead letters, each event with its own ``$insert_id`` (as sent)."""
    letters = []
    for record in events(COUNT, pad="x" * 1000):
        n = record["properties"]["n"]
        record["properties"]["$insert_id"] = f"letter-{n}"
        letters.append({"endpoint": "import", "status": "failed", "record": record})
    # A placeholder id Mixpanel refuses, as long as the id that corrects it.
    letters[MIDDLE]["record"]["properties"]["distinct_id"] = "undefined"
    return letters


def test_a_same_size_correction_in_the_middle_of_a_large_file_is_replayed(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, plugins=[])
    dead = write_ndjson(tmp_path / "dead.jsonl", dead_letters())
    rejected, checkpoint = tmp_path / "rejected.jsonl", tmp_path / "replay.checkpoint"
    command = ["replay-dead-letters", "--file", str(dead), "--config", str(config)]
    command += ["--rejected-file", str(rejected), "--checkpoint", str(checkpoint)]

    assert main(command) == 0
    assert [line["index"] for line in read_lines(rejected)] == [MIDDLE]
    size, content = dead.stat().st_size, dead.read_bytes()
    assert size > 2 * SAMPLE_BYTES
    where = content.index(b'"distinct_id":"undefined"')
    assert SAMPLE_BYTES < where < size - SAMPLE_BYTES, "the correction is in the middle"
    dead.write_bytes(content.replace(b'"distinct_id":"undefined"', b'"distinct_id":"user-1500"'))
    assert dead.stat().st_size == size
    capsys.readouterr()

    assert main(command) == 0

    assert "skipped" not in capsys.readouterr().err
    arrived = {r["properties"]["n"] for r in mixpanel_emulator.client.records("import")}
    assert arrived == set(range(COUNT)), "the corrected letter arrived"


def test_a_version_1_checkpoint_is_refused_saying_why(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", events(5))
    checkpoint = tmp_path / "send.checkpoint"
    files = {file_identity(source): {"path": str(source), "confirmed": 3, "complete": False}}
    checkpoint.write_bytes(orjson.dumps({"version": 1, "files": files}))
    before = checkpoint.read_bytes()

    code = main(["send", str(source), "--config", str(config), "--checkpoint", str(checkpoint)])

    assert code == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"mixpanel-core: error: {checkpoint}: a version 1 checkpoint")
    assert "finish the run it records with the older version, or delete it" in error
    assert checkpoint.read_bytes() == before
    assert mixpanel_emulator.client.records("import") == []
