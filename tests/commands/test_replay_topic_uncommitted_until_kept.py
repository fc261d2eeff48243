"""A topic batch whose dead letters still fail, with no ``--rejected-file`` to keep them, is not
committed: the replay exits 1, and the rerun the error asks for (with ``--rejected-file``) reads
the batch again and keeps every one of them. Committed, they would be gone from the replay's
view of the topic, and their only copy would be the stderr lines of a run that failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator
from mixpanel_core.kafka.client_library import kafka_python

from .conftest import read_lines, write_config
from .test_replay import _produce_dead_letters

pytestmark = pytest.mark.integration


def test_dead_letters_not_kept_stay_uncommitted_for_the_rerun_that_keeps_them(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source_topic, dead_letter_topic = kafka_topic_factory(partitions=1), kafka_topic_factory()
    # Five events with times in microseconds (refused without the fix) and one that is not JSON.
    _produce_dead_letters(kafka_bootstrap, dead_letter_topic, source_topic)
    config = write_config(tmp_path, mixpanel_emulator)
    arguments = ["replay-dead-letters", "--topic", dead_letter_topic, "--config", str(config),
                 "--bootstrap-servers", kafka_bootstrap, "--group-id", "keep-test"]  # fmt: skip

    assert main(arguments) == 1
    assert "no --rejected-file keeps them" in capsys.readouterr().err

    kafka = kafka_python()
    reader = kafka.KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id="keep-test")
    try:
        partitions = reader.partitions_for_topic(dead_letter_topic)
        committed = [
            reader.committed(kafka.TopicPartition(dead_letter_topic, p)) for p in partitions
        ]
    finally:
        reader.close()
    assert all(offset is None for offset in committed), committed

    still_bad = tmp_path / "still-bad.jsonl"
    assert main([*arguments, "--rejected-file", str(still_bad)]) == 0
    assert len(read_lines(still_bad)) == 6
    assert mixpanel_emulator.client.records("import") == []
