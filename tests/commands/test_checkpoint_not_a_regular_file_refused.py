"""R71 F5: a ``--checkpoint`` that is not a regular file (``/dev/null``, a folder) is refused as
such, asking for another path. Before, it was read as a checkpoint and met with "not a
checkpoint ...; delete it to start over": advice to delete a device node, often as root."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration


def test_dev_null_or_a_folder_as_checkpoint_is_refused_without_asking_to_delete_it(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", events(3))
    dead = tmp_path / "dead.jsonl"
    dead.write_bytes(orjson.dumps({"endpoint": "import", "record": events(1)[0]}) + b"\n")
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    runs = {
        "/dev/null": ["send", str(source)],
        str(folder): ["replay-dead-letters", "--file", str(dead)],
    }

    for checkpoint, command in runs.items():
        code = main([*command, "--config", str(config), "--checkpoint", checkpoint])

        assert code == 1
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error == (
            f"mixpanel-core: error: {checkpoint}: not a regular file; a checkpoint must be one "
            "(it is replaced whole as the run goes): give --checkpoint another path"
        )
        assert "delete" not in error
    assert mixpanel_emulator.client.records("import") == []
    assert Path("/dev/null").is_char_device()
