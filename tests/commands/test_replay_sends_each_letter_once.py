"""``replay-dead-letters --file`` sends each dead letter once, whatever the batch size: a batch
handed on again with the next one would reach Mixpanel twice (its profile updates applied
twice, ``$add`` included), and be counted twice in the summary."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import write_config

pytestmark = pytest.mark.integration


def test_each_dead_letter_of_a_file_reaches_mixpanel_once_across_batches(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(time.time()) - 3600
    dead = tmp_path / "dead-letters.jsonl"
    letters = [
        {
            "endpoint": "import",
            "status": "failed",
            "record": {
                "event": "E",
                "properties": {"distinct_id": f"u-{n}", "time": now, "$insert_id": f"dl-{n}"},
            },
        }
        for n in range(5)
    ]
    dead.write_bytes(b"".join(orjson.dumps(letter) + b"\n" for letter in letters))
    config = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits"])

    code = main(
        ["replay-dead-letters", "--file", str(dead), "--config", str(config), "--batch-size", "2"]
    )

    assert code == 0
    assert mixpanel_emulator.insert_ids("import") == [f"dl-{n}" for n in range(5)]
    assert "replayed 5 dead letters: 5 accepted" in capsys.readouterr().err
