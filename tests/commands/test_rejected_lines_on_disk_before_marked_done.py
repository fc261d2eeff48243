"""What the rejected file holds is on disk, not in a buffer of the process, before anything says
its records are done: before ``send`` moves its checkpoint past a chunk, and before
``replay-dead-letters`` commits a topic batch. A run killed after that (``kill -9``, the machine
going down) would otherwise leave records marked done whose only copy was never written: the
rerun skips them, and the dead-letter topic's commit has let go of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.commands.dead_letter_sources import DeadLetterTopic
from mixpanel_core.emulator import Emulator

from .conftest import events, write_config, write_ndjson
from .test_replay import _produce_dead_letters
from .test_send import backfill

pytestmark = pytest.mark.integration


def _lines_on_disk(path: Path) -> int:
    """Lines another reader of ``path`` sees now (a buffer of this process holds none of them)."""
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def test_a_chunks_rejections_are_on_disk_once_the_checkpoint_is_past_it(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    records: list[object] = [*events(6)]
    records[1] = {"not": "a record of any endpoint"}
    source = write_ndjson(tmp_path / "events.ndjson", records)
    checkpoint, rejected = tmp_path / "send.checkpoint", tmp_path / "rejected.jsonl"
    run = backfill(config, [source], checkpoint=checkpoint, rejected_file=rejected, batch_size=3)
    seen: list[tuple[int, int]] = []

    def look(path: Path, index: int) -> None:
        if index == 3:  # the first record after the first chunk was confirmed
            confirmed = orjson.loads(checkpoint.read_bytes())["files"].popitem()[1]["confirmed"]
            seen.append((confirmed, _lines_on_disk(rejected)))

    run.after_record = look
    run.run()

    assert seen == [(3, 1)]


def test_a_topic_batchs_rejections_are_on_disk_when_it_is_committed(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source_topic, dead_letter_topic = kafka_topic_factory(partitions=1), kafka_topic_factory()
    # Five events with times in microseconds (refused without the fix) and one that is not JSON:
    # every one of them goes to the rejected file.
    _produce_dead_letters(kafka_bootstrap, dead_letter_topic, source_topic)
    config = write_config(tmp_path, mixpanel_emulator)
    still_bad = tmp_path / "still-bad.jsonl"
    at_commits: list[tuple[int, int]] = []
    commit = DeadLetterTopic.commit

    def observed_commit(topic: DeadLetterTopic, records: Any) -> None:
        done = len(records) + (at_commits[-1][0] if at_commits else 0)
        at_commits.append((done, _lines_on_disk(still_bad)))
        commit(topic, records)

    monkeypatch.setattr(DeadLetterTopic, "commit", observed_commit)
    arguments = ["replay-dead-letters", "--topic", dead_letter_topic, "--config", str(config),
                 "--bootstrap-servers", kafka_bootstrap, "--rejected-file", str(still_bad),
                 "--group-id", "replay-sync-test"]  # fmt: skip

    assert main(arguments) == 0

    assert at_commits, "nothing was committed"
    assert at_commits[-1][0] == 6
    assert all(on_disk == done for done, on_disk in at_commits), at_commits
