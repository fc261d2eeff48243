"""When ``send`` prints its summary line (docs/commands.md, "Progress and summary"): at the end of
every run that started, also after an error; never after a refusal before anything was read."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration


def _summaries(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("sent ")]


@pytest.mark.parametrize(
    "refusal",
    ["rejected file is the input", "checkpoint is the input", "unknown transport"],
)
def test_a_refusal_before_anything_is_read_prints_only_its_error(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    refusal: str,
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", events(3))
    extra = {
        "rejected file is the input": ["--rejected-file", str(source)],
        "checkpoint is the input": ["--checkpoint", str(source)],
        "unknown transport": ["--transport", "nope"],
    }[refusal]

    assert main(["send", str(source), "--config", str(config), *extra]) == 1

    err = capsys.readouterr().err
    assert _summaries(err) == []
    assert [line for line in err.splitlines() if line.startswith("mixpanel-core: error:")]
    assert mixpanel_emulator.client.stats()["requests"] == {}


def test_an_error_once_the_run_started_still_ends_with_the_summary(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    sent = write_ndjson(tmp_path / "events.ndjson", events(3))
    broken = tmp_path / "broken.json"  # a JSON array found broken only when it is read
    broken.write_text('[{"event": "E", "properties": {}}, {"event": ')

    assert main(["send", str(sent), str(broken), "--config", str(config)]) == 1

    err = capsys.readouterr().err
    (summary,) = _summaries(err)
    assert "3 accepted" in summary
    assert "broken.json" in err.splitlines()[-1]
