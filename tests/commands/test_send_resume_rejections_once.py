"""An interrupted `send` resumed from its checkpoint writes each rejected record once: the rejected
file had 2,100 lines for 2,000 records, those of the chunk the interruption cut written by the
first run and again by the resumed one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from mixpanel_core.commands.errors import CommandError
from mixpanel_core.emulator import Emulator

from .conftest import events, read_lines, write_config, write_ndjson
from .test_send import backfill, stop_after

pytestmark = pytest.mark.integration


def test_rejections_of_the_interrupted_chunk_are_written_once_after_resuming(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    # Every third record is bad, caught by mixpanel_limits as it is read (the reviewed run).
    config = write_config(tmp_path, mixpanel_emulator)
    records = events(30)
    for record in records[::3]:
        record["properties"]["time"] = 1000  # before 1971
    source = write_ndjson(tmp_path / "events.ndjson", records)
    rejected, checkpoint = tmp_path / "rejected.jsonl", tmp_path / "send.checkpoint"
    options = {"rejected_file": rejected, "checkpoint": checkpoint}

    first = backfill(config, [source], batch_size=10, **options)
    first.after_record = stop_after(16)  # in the second chunk, past two of its bad records
    with pytest.raises(KeyboardInterrupt):
        first.run()
    assert orjson.loads(checkpoint.read_bytes())["files"].popitem()[1]["confirmed"] == 10
    assert sorted(line["index"] for line in read_lines(rejected)) == [0, 3, 6, 9]

    backfill(config, [source], batch_size=10, **options).run()

    indexes = Counter(line["index"] for line in read_lines(rejected))
    assert indexes == Counter(range(0, 30, 3))  # each bad record once, none twice


def test_a_chunk_not_delivered_writes_its_rejections_only_when_it_is_sent_again(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, retry_budget=0.0)
    records = events(10)
    records[4]["properties"]["time"] = 1000
    source = write_ndjson(tmp_path / "events.ndjson", records)
    rejected, checkpoint = tmp_path / "rejected.jsonl", tmp_path / "send.checkpoint"
    options = {"rejected_file": rejected, "checkpoint": checkpoint}
    mixpanel_emulator.client.fail_next(1, 503)

    with pytest.raises(CommandError, match="were not delivered"):
        backfill(config, [source], batch_size=10, **options).run()
    backfill(config, [source], batch_size=10, **options).run()

    assert [line["index"] for line in read_lines(rejected)] == [4]
