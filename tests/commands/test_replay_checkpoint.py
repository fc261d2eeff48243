"""``replay-dead-letters --file ... --checkpoint``: a replay stopped part way resumes where its
delivery was confirmed, so a profile ``$add`` it delivered is not applied again by the rerun.

Before, a file replay had no resume mark: every rerun sent the file again from its first line.
Against the emulator, with plugins installed through real entry points."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator
from mixpanel_core.testing import install_distribution

from .conftest import TOKEN, read_lines, write_config, write_ndjson

pytestmark = pytest.mark.integration

FAULTY = """\
from mixpanel_core import hookimpl


class Faulty:
    @hookimpl
    def mixpanel_validate(self, message):
        if message.record.get("$distinct_id") == "user-3":
            raise RuntimeError("a bug of its own")
        return None
"""


@pytest.fixture
def faulty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The ``faulty`` plugin: raises on user-3's record."""
    site = install_distribution(
        tmp_path / "site",
        "faulty-checkpoint",
        {"mixpanel_core.plugins": {"faulty": "faulty_checkpoint:Faulty"}},
        {"faulty_checkpoint": FAULTY},
    )
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("faulty_checkpoint", None)


def add_one(user: int) -> dict[str, Any]:
    """A dead letter of an ``$add`` to ``user``'s profile: applied twice if replayed twice."""
    record = {"$token": TOKEN, "$distinct_id": f"user-{user}", "$add": {"logins": 1}}
    return {"endpoint": "engage", "status": "failed", "reason": "HTTP 500", "record": record}


def applied(emulator: Emulator) -> list[str]:
    """The users whose ``$add`` the emulator accepted, once per time it was applied."""
    return [record["$distinct_id"] for record in emulator.client.records("engage")]


def replay(config: Path, letters: Path, checkpoint: Path, *more: str) -> int:
    return main(
        ["replay-dead-letters", "--file", str(letters), "--checkpoint", str(checkpoint),
         "--batch-size", "2", "--config", str(config), *more]
    )  # fmt: skip


def test_a_replay_stopped_at_a_letter_resumes_at_it(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    faulty: None,
) -> None:
    # The plugin raises on letter 3: the letters before it are delivered and confirmed, the
    # run stops naming it.
    dead = write_ndjson(tmp_path / "dead-letters.jsonl", [add_one(n) for n in range(5)])
    checkpoint = tmp_path / "replay.checkpoint"
    faulty_config = write_config(tmp_path, mixpanel_emulator, plugins=["faulty"])

    assert replay(faulty_config, dead, checkpoint) == 1
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith(
            "the dead letters before it are delivered or kept (the checkpoint holds the place: "
            "run the same command again to resume at it)"
        )
    )
    assert applied(mixpanel_emulator) == ["user-0", "user-1", "user-2"]
    (state,) = orjson.loads(checkpoint.read_bytes())["files"].values()
    assert state == {"path": str(dead), "confirmed": 3, "complete": False}

    # Fixed (the plugin taken out), the rerun sends letters 3 and 4 only.
    fixed = write_config(tmp_path, mixpanel_emulator, plugins=[])
    assert replay(fixed, dead, checkpoint) == 0
    assert applied(mixpanel_emulator) == [f"user-{n}" for n in range(5)]
    summary = capsys.readouterr().err.splitlines()[-1]
    assert summary.startswith("replayed 2 dead letters: 2 accepted, 0 still failing, 3 confirmed")

    # Done: a third run sends nothing, and says why.
    assert replay(fixed, dead, checkpoint) == 0
    assert applied(mixpanel_emulator) == [f"user-{n}" for n in range(5)]
    assert f"{dead}: confirmed by an earlier replay; skipped" in capsys.readouterr().err


def test_the_checkpoint_stays_before_a_letter_that_failed_unkept(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --rejected-file a letter that still fails is kept nowhere: the checkpoint stays
    before its batch, so the rerun with --rejected-file meets it again."""
    bad = add_one(3)
    bad["record"]["$distinct_id"] = ""  # refused by validation
    letters = [add_one(0), add_one(1), add_one(2), bad, add_one(4), add_one(5)]
    dead = write_ndjson(tmp_path / "dead-letters.jsonl", letters)
    checkpoint = tmp_path / "replay.checkpoint"
    config = write_config(tmp_path, mixpanel_emulator)

    assert replay(config, dead, checkpoint) == 1
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.endswith("the checkpoint stays before the batch of the first: rerun from there")
    assert applied(mixpanel_emulator) == ["user-0", "user-1", "user-2", "user-4", "user-5"]
    (state,) = orjson.loads(checkpoint.read_bytes())["files"].values()
    assert state["confirmed"] == 2  # the batch of letters 2 and 3 is not confirmed

    still_bad = tmp_path / "still-bad.jsonl"
    assert replay(config, dead, checkpoint, "--rejected-file", str(still_bad)) == 0
    # Letters 0 and 1 were not sent again; those after the checkpoint were.
    assert applied(mixpanel_emulator) == [
        *("user-0", "user-1", "user-2", "user-4", "user-5"),
        *("user-2", "user-4", "user-5"),
    ]
    assert [line["index"] for line in read_lines(still_bad)] == [3]
    (state,) = orjson.loads(checkpoint.read_bytes())["files"].values()
    assert state["complete"] is True


def test_a_dry_run_reads_the_checkpoint_and_writes_none(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = write_ndjson(tmp_path / "dead-letters.jsonl", [add_one(n) for n in range(3)])
    checkpoint = tmp_path / "replay.checkpoint"
    config = write_config(tmp_path, mixpanel_emulator)

    assert replay(config, dead, checkpoint, "--dry-run") == 0
    assert not checkpoint.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dead-letters.jsonl", "mixpanel.toml"]
    assert applied(mixpanel_emulator) == []

    assert replay(config, dead, checkpoint, "--batch-size", "2") == 0
    capsys.readouterr()
    assert replay(config, dead, checkpoint, "--dry-run") == 0
    assert f"{dead}: confirmed by an earlier replay; skipped" in capsys.readouterr().err
    assert applied(mixpanel_emulator) == ["user-0", "user-1", "user-2"]


def test_a_checkpoint_is_refused_with_a_topic_and_as_the_file(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    code = main(
        ["replay-dead-letters", "--topic", "dead", "--bootstrap-servers", "127.0.0.1:9",
         "--checkpoint", str(tmp_path / "c"), "--config", str(config)]
    )  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "mixpanel-core: error: --checkpoint: only with --file (a topic's replay resumes at the "
        "offsets committed for --group-id)"
    )

    dead = write_ndjson(tmp_path / "dead-letters.jsonl", [add_one(0)])
    assert replay(config, dead, dead) == 1
    assert "--checkpoint" in capsys.readouterr().err.splitlines()[-1]
    assert applied(mixpanel_emulator) == []


@pytest.mark.parametrize("role", ["--file", "--rejected-file"])
def test_a_file_beside_the_checkpoint_is_not_its_scratch_file(
    tmp_path: Path, mixpanel_emulator: Emulator, role: str
) -> None:
    """The checkpoint was written to ``CHECKPOINT.tmp``, truncated and renamed over it: given
    as ``--file``, the dead letters were deleted before anything was sent; as
    ``--rejected-file``, the letters kept there were wiped (review R63 F1)."""
    checkpoint = tmp_path / "replay.checkpoint"
    beside = tmp_path / "replay.checkpoint.tmp"
    bad = add_one(1)
    bad["record"]["$distinct_id"] = ""  # still fails: kept in the rejected file
    letters = [add_one(0), bad]
    config = write_config(tmp_path, mixpanel_emulator)
    if role == "--file":
        dead = write_ndjson(beside, letters)
        rejected = tmp_path / "still-bad.jsonl"
    else:
        dead = write_ndjson(tmp_path / "dead-letters.jsonl", letters)
        rejected = beside
        rejected.write_bytes(b'{"kept": "by an earlier run"}\n')

    assert replay(config, dead, checkpoint, "--rejected-file", str(rejected)) == 0

    assert applied(mixpanel_emulator) == ["user-0"]
    if role == "--file":
        assert dead.read_bytes().count(b"\n") == 2
    kept = read_lines(rejected)
    assert [line.get("index") for line in kept] == ([None, 1] if role != "--file" else [1])
