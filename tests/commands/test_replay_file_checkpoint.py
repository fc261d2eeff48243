"""``replay-dead-letters --file F --checkpoint C`` remembers how far the file's dead letters
are confirmed, as ``send --checkpoint`` does: a rerun resumes there and applies none of the
letters before it again. Without it, each rerun of a file replayed it whole (a profile's
``$add`` applied once per run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import TOKEN, events, write_config, write_ndjson

pytestmark = pytest.mark.integration

ONLY_ENGAGE = '[[routes]]\nendpoints = ["engage"]\ntransport = "direct"\n'


def letters_file(tmp_path: Path) -> Path:
    """Profile ``$add``s for user-0, user-1, user-3, and an /import event third."""
    adds = [{"$token": TOKEN, "$distinct_id": f"user-{n}", "$add": {"visits": 1}} for n in range(4)]
    [event] = events(1)
    event["properties"]["$insert_id"] = "the-import-event"
    letters: list[tuple[str, dict[str, Any]]] = [
        ("engage", adds[0]), ("engage", adds[1]), ("import", event), ("engage", adds[3]),
    ]  # fmt: skip
    lines = [
        {"endpoint": endpoint, "status": "failed", "reason": "HTTP 500", "record": record}
        for endpoint, record in letters
    ]
    return write_ndjson(tmp_path / "dead-letters.jsonl", lines)


def profiles(emulator: Emulator) -> list[str]:
    return sorted(record["$distinct_id"] for record in emulator.client.records("engage"))


def confirmed_in(checkpoint: Path) -> tuple[int, bool]:
    [entry] = orjson.loads(checkpoint.read_bytes())["files"].values()
    return int(entry["confirmed"]), bool(entry["complete"])


def test_a_file_replay_with_a_checkpoint_resumes_where_it_stopped(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    dead_letters = letters_file(tmp_path)
    checkpoint = tmp_path / "replay-checkpoint.json"
    arguments = ["replay-dead-letters", "--file", str(dead_letters),
                 "--checkpoint", str(checkpoint)]  # fmt: skip

    for run in range(2):  # each run stops at the same letter, applying nothing twice
        config = write_config(tmp_path, mixpanel_emulator, extra=ONLY_ENGAGE)
        assert main([*arguments, "--config", str(config)]) == 1, run
        last = capsys.readouterr().err.splitlines()[-1]
        assert last.startswith(
            f"mixpanel-core: error: stopped at dead letter 2 of {dead_letters} (counted from 0), "
            "not sent: routes: no route takes import messages"
        ), last
        assert last.endswith(
            "; the dead letters before it are delivered or kept, and checkpointed: a rerun "
            "resumes at it"
        ), last
        assert confirmed_in(checkpoint) == (2, False)
        assert profiles(mixpanel_emulator) == ["user-0", "user-1"]

    assert main([*arguments, "--config", str(write_config(tmp_path, mixpanel_emulator))]) == 0
    assert profiles(mixpanel_emulator) == ["user-0", "user-1", "user-3"]
    assert len(mixpanel_emulator.client.records("import")) == 1
    assert confirmed_in(checkpoint) == (4, True)
    capsys.readouterr()

    # Done: a rerun sends nothing, and says why.
    assert main([*arguments, "--config", str(write_config(tmp_path, mixpanel_emulator))]) == 0
    err = capsys.readouterr().err
    assert f"{dead_letters}: confirmed by an earlier run (--checkpoint); skipped" in err
    assert profiles(mixpanel_emulator) == ["user-0", "user-1", "user-3"]


def test_the_checkpoint_stays_before_letters_still_failing_and_not_kept(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past them, the rerun with --rejected-file that the error asks for would not meet them."""
    records = [
        {"$token": TOKEN, "$distinct_id": f"user-{n}", "$add": {"visits": 1}} for n in range(3)
    ]
    records[1]["$add"] = {"visits": "one"}  # Mixpanel refuses a non-numeric $add
    lines = [
        {"endpoint": "engage", "status": "failed", "reason": "HTTP 500", "record": record}
        for record in records
    ]
    dead_letters = write_ndjson(tmp_path / "dead-letters.jsonl", lines)
    checkpoint = tmp_path / "replay-checkpoint.json"
    config = write_config(tmp_path, mixpanel_emulator)
    arguments = ["replay-dead-letters", "--file", str(dead_letters), "--config", str(config),
                 "--checkpoint", str(checkpoint)]  # fmt: skip

    assert main(arguments) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("mixpanel-core: error: 1 dead letter(s) of "), last
    assert last.endswith(
        "still fail and no --rejected-file keeps them; the checkpoint stays before their "
        "batch, at dead letter 0"
    ), last
    assert not checkpoint.exists() or confirmed_in(checkpoint) == (0, False)

    rejected = tmp_path / "still-failing.jsonl"
    assert main([*arguments, "--rejected-file", str(rejected)]) == 0
    assert [orjson.loads(line)["index"] for line in rejected.read_text().splitlines()] == [1]
    assert confirmed_in(checkpoint) == (3, True)


def test_a_checkpoint_is_refused_with_a_topic(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["replay-dead-letters", "--topic", "dead-letters", "--checkpoint", "c.json",
                 "--bootstrap-servers", "127.0.0.1:9"])  # fmt: skip
    assert code != 0
    assert "--checkpoint: only with --file; a topic's replay resumes at the offsets its " in (
        capsys.readouterr().err
    )
