"""Every ``FILE`` of ``send`` is checked before anything is sent, but identified only when its
turn comes: identified at start, a file still being written while the files before it were sent
was checkpointed under what it held at start, and the rerun sent it again whole, under new
derived ``$insert_id``s (22 events for its 11 records)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson
from .test_send import backfill

pytestmark = pytest.mark.integration


def test_a_file_appended_to_while_the_one_before_it_is_sent_is_not_sent_again(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    first = write_ndjson(tmp_path / "a.ndjson", events(10))
    second = write_ndjson(tmp_path / "b.ndjson", events(10, start=100))
    checkpoint = tmp_path / "send.checkpoint"

    def still_exported(path: Path, index: int) -> None:
        if path == first and index == 0:  # one more record lands in the second file
            with second.open("ab") as handle:
                handle.write(orjson.dumps(events(1, start=110)[0]) + b"\n")

    run = backfill(config, [first, second], checkpoint=checkpoint, batch_size=5)
    run.after_record = still_exported
    assert run.run().records == 21

    rerun = backfill(config, [first, second], checkpoint=checkpoint, batch_size=5).run()

    assert (rerun.records, rerun.skipped) == (0, 21)
    assert len(mixpanel_emulator.client.records("import")) == 21
