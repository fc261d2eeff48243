"""The checkpoint and the rejected file are fsynced, not only written, before a run counts on
them: the new checkpoint before it replaces the old one (after a power cut, a rename that
reached the disk before the data would leave an empty checkpoint, and the rerun would have to
start over: profile ``$add``s applied twice), and the rejected file before the checkpoint moves
past its records (they would be marked done and found nowhere)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mixpanel_core.commands.checkpoint import Checkpoint
from mixpanel_core.commands.rejected import RejectedFile, Rejection

Calls = list[tuple[str, str]]


@pytest.fixture
def disk_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Every ``os.fsync`` (by the path of its descriptor) and ``os.replace``, in order."""
    calls: Calls = []
    fsync, replace = os.fsync, os.replace

    def observed_fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def observed_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        calls.append(("replace", str(target)))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", observed_fsync)
    monkeypatch.setattr(os, "replace", observed_replace)
    return calls


def test_a_new_checkpoint_is_fsynced_before_it_replaces_the_old(
    tmp_path: Path, disk_calls: Calls
) -> None:
    path = tmp_path / "send.checkpoint"

    Checkpoint(path).advance("identity", tmp_path / "in.ndjson", 100)

    ((fsync, aside), replace) = disk_calls
    assert (fsync, Path(aside).parent) == ("fsync", tmp_path)
    assert aside != str(path)
    assert replace == ("replace", str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["send.checkpoint"]


def test_a_rejected_files_sync_reaches_the_disk(tmp_path: Path, disk_calls: Calls) -> None:
    path = tmp_path / "rejected.jsonl"
    rejected = RejectedFile(path)
    rejected.write(Rejection("read", "invalid", "not JSON", "{oops"))

    rejected.sync()

    assert disk_calls == [("fsync", str(path))]
    assert path.read_bytes().count(b"\n") == 1
    rejected.close()
