"""R71 F2: Ctrl-C or SIGTERM while a chunk's (or a replayed batch's) rejections are being kept
leaves none of them in the rejected file unless the checkpoint moved past the chunk. Before, the
rejections handed to the rejected file so far were written by its close in ``run()``'s
``finally`` while the checkpoint stayed before the chunk, so the rerun wrote them again.

A real signal is sent to the process itself from inside ``RejectedFile.write``, for Ctrl-C
pressed at that moment; an interruption raised there directly stands for one that cannot be
held (a run driven from another thread than the main one)."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.commands.progress import ProgressLine
from mixpanel_core.commands.rejected import RejectedFile, Rejection
from mixpanel_core.commands.replay import Replay, ReplayOptions
from mixpanel_core.config import load_config
from mixpanel_core.emulator import Emulator

from .conftest import events, read_lines, write_config, write_ndjson
from .test_send import backfill

pytestmark = pytest.mark.integration

BAD = range(0, 30, 3)
"""Every third record is invalid (its time before 1971), refused as it is read."""


def send_a_signal() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def raise_at_once() -> None:
    raise KeyboardInterrupt


def interrupt_at(
    monkeypatch: pytest.MonkeyPatch, index: int, interrupt: Callable[[], None]
) -> None:
    """Interrupt the run once the rejection of record ``index`` was handed to the file."""
    write = RejectedFile.write

    def written_then_interrupted(self: RejectedFile, rejection: Rejection) -> None:
        write(self, rejection)
        if rejection.index == index:
            interrupt()

    monkeypatch.setattr(RejectedFile, "write", written_then_interrupted)


def confirmed(checkpoint: Path) -> int:
    return int(orjson.loads(checkpoint.read_bytes())["files"].popitem()[1]["confirmed"])


def with_bad_times() -> list[dict[str, Any]]:
    records = events(30)
    for n in BAD:
        records[n]["properties"]["time"] = 1000
    return records


@pytest.mark.parametrize(
    ("interrupt", "settled"),
    [
        (send_a_signal, 20),  # held until the chunk is settled, checkpoint and all
        (raise_at_once, 10),  # not held: none of the chunk's rejections is written
    ],
)
def test_send_interrupted_as_it_keeps_a_chunks_rejections_writes_each_once(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    interrupt: Callable[[], None],
    settled: int,
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", with_bad_times())
    rejected, checkpoint = tmp_path / "rejected.jsonl", tmp_path / "send.checkpoint"
    options = {"rejected_file": rejected, "checkpoint": checkpoint, "batch_size": 10}

    with monkeypatch.context() as patched:
        interrupt_at(patched, 15, interrupt)  # the second chunk's, after that of record 12
        with pytest.raises(KeyboardInterrupt):
            backfill(config, [source], **options).run()
    assert confirmed(checkpoint) == settled
    assert [line["index"] for line in read_lines(rejected)] == [n for n in BAD if n < settled]

    backfill(config, [source], **options).run()

    assert Counter(line["index"] for line in read_lines(rejected)) == Counter(BAD)


def test_replay_interrupted_as_it_keeps_a_batchs_rejections_writes_each_once(
    tmp_path: Path, mixpanel_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    dead = write_ndjson(
        tmp_path / "dead.jsonl",
        [{"endpoint": "import", "record": record} for record in with_bad_times()],
    )
    rejected, checkpoint = tmp_path / "rejected.jsonl", tmp_path / "replay.checkpoint"
    options = ReplayOptions(file=dead, rejected_file=rejected, checkpoint=checkpoint, batch_size=10)

    def replay() -> Replay:
        return Replay(load_config(config), options, ProgressLine(live=False))

    with monkeypatch.context() as patched:
        interrupt_at(patched, 15, send_a_signal)
        with pytest.raises(KeyboardInterrupt):
            replay().run()
    assert confirmed(checkpoint) == 20, "the batch was settled before the signal was let in"

    replay().run()

    assert Counter(line["index"] for line in read_lines(rejected)) == Counter(BAD)
