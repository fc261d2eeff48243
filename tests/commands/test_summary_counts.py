"""The summary counts each record once, and every record Mixpanel accepted: also those accepted
while a stopped run closed its transports (an interrupt, an unreadable file), and a record
routed to two transports once, not twice. The checkpoint still confirms only confirmed chunks."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.commands.progress import ProgressLine
from mixpanel_core.commands.replay import Replay, ReplayOptions
from mixpanel_core.config import load_config
from mixpanel_core.emulator import Emulator

from .conftest import FAST_RETRIES, events, read_lines, write_config, write_ndjson
from .test_send import backfill, stop_after

pytestmark = pytest.mark.integration

SECOND_TRANSPORT = f"""
[transports.direct2]
type = "buffered_http"
linger = 0.005
exit_timeout = 0.0
{FAST_RETRIES}
[[routes]]
transport = ["direct", "direct2"]
"""


def _summary(err: str) -> str:
    (line,) = [line for line in err.splitlines() if line.startswith(("sent ", "replayed "))]
    return line


def test_records_accepted_while_an_interrupted_send_closes_are_counted_not_confirmed(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", events(150))
    checkpoint = tmp_path / "send.checkpoint"
    stopped = backfill(config, [source], checkpoint=checkpoint, batch_size=100)
    stopped.after_record = stop_after(150)  # the second chunk sent, not yet confirmed

    with pytest.raises(KeyboardInterrupt):
        stopped.run()

    arrived = len(set(mixpanel_emulator.client.insert_ids("import")))
    assert arrived == 150
    assert stopped.tally.accepted == arrived
    assert orjson.loads(checkpoint.read_bytes())["files"].popitem()[1]["confirmed"] == 100


def test_records_accepted_before_a_truncated_gzip_stops_the_run_are_counted(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    whole = gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in events(400)))
    source = tmp_path / "events.ndjson.gz"
    source.write_bytes(whole[: len(whole) * 2 // 3])

    assert main(["send", str(source), "--config", str(config)]) == 1

    err = capsys.readouterr().err
    assert "events.ndjson.gz: cannot be read" in err.strip().splitlines()[-1]
    arrived = len(set(mixpanel_emulator.client.insert_ids("import")))
    assert arrived > 0
    assert f" {arrived:,} accepted" in _summary(err)


def test_a_record_routed_to_two_transports_counts_once(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # No plugins: the emulator rejects the bad record, once through each transport.
    config = write_config(tmp_path, mixpanel_emulator, plugins=[], extra=SECOND_TRANSPORT)
    records = events(4)
    records[2]["properties"]["time"] = 1000
    source = write_ndjson(tmp_path / "events.ndjson", records)
    rejected = tmp_path / "rejected.jsonl"

    code = main(["send", str(source), "--config", str(config), "--rejected-file", str(rejected)])

    assert code == 0
    assert len(mixpanel_emulator.client.records("import")) == 6  # 3 good ones, twice each
    assert " 3 accepted, 1 rejected" in _summary(capsys.readouterr().err)
    assert [line["index"] for line in read_lines(rejected)] == [2]


def test_a_dead_letter_routed_to_two_transports_counts_once(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, extra=SECOND_TRANSPORT)
    dead = tmp_path / "dead.jsonl"
    dead.write_bytes(
        b"".join(orjson.dumps({"endpoint": "import", "record": r}) + b"\n" for r in events(3))
    )

    assert main(["replay-dead-letters", "--config", str(config), "--file", str(dead)]) == 0

    assert "replayed 3 dead letters: 3 accepted, 0 still failing" in _summary(
        capsys.readouterr().err
    )


class _InterruptAt(ProgressLine):
    """A progress line that acts like Ctrl-C once ``count`` dead letters were sent."""

    def __init__(self, count: int) -> None:
        super().__init__(live=False)
        self.count = count

    def update(self, records: int, bytes_read: int, *, force: bool = False) -> None:
        if records == self.count:
            raise KeyboardInterrupt


def test_dead_letters_accepted_while_an_interrupted_replay_closes_are_counted(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    dead = tmp_path / "dead.jsonl"
    dead.write_bytes(
        b"".join(orjson.dumps({"endpoint": "import", "record": r}) + b"\n" for r in events(30))
    )
    options = ReplayOptions(file=dead, batch_size=10)
    replay = Replay(load_config(config), options, _InterruptAt(15))  # mid second batch

    with pytest.raises(KeyboardInterrupt):
        replay.run()

    arrived = len(set(mixpanel_emulator.client.insert_ids("import")))
    assert arrived == 15
    assert replay.tally.accepted == arrived
