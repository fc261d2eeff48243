"""``replay-dead-letters`` stopped by a plugin that raises on a dead letter (installed through a
real entry point, against the emulator and the real broker): the letters before it are
delivered and, on a topic, committed before the command stops naming it, so the rerun once the
plugin is fixed starts at that letter and sends none of them again.

Before, the batch stopped uncommitted at the letter while the letters before it were delivered
as the transports closed: the rerun sent them a second time (a profile's ``$add`` applied
twice), and the error did not say which letter it was."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.testing import install_distribution

from ..faulty_plugins import STRICT
from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration

ERROR = "plugin 'strict' failed in mixpanel_validate: KeyError: 'plan'"


@pytest.fixture
def strict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    site = install_distribution(
        tmp_path / "site",
        "strict-replay",
        {"mixpanel_core.plugins": {"strict": "strict_replay:Strict"}},
        {"strict_replay": STRICT},
    )
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("strict_replay", None)


def five_letters() -> list[dict[str, Any]]:
    """Five events; the plugin raises on the third (``boom``)."""
    return [*events(2), *events(1, start=2, boom=True), *events(2, start=3)]


def committed_offset(bootstrap: str, topic: str, group: str) -> int | None:
    kafka = kafka_python()
    reader = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        return reader.committed(kafka.TopicPartition(topic, 0))  # type: ignore[no-any-return]
    finally:
        reader.close()


def test_a_topic_replay_commits_the_letters_before_the_one_a_plugin_raised_on(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    capsys: pytest.CaptureFixture[str],
    strict: None,
) -> None:
    dead_letter_topic = kafka_topic_factory(partitions=1)
    producer = kafka_python().KafkaProducer(bootstrap_servers=kafka_bootstrap)
    writer = DeadLetterWriter(producer, dead_letter_topic, "mixpanel-forwarder")
    original = [(headers.ENDPOINT, b"import"), (headers.SCHEMA, headers.SCHEMA_VERSION.encode())]
    sources = [
        types.SimpleNamespace(
            topic="events",
            partition=0,
            offset=offset,
            key=b"user",
            value=orjson.dumps(record),
            headers=original,
        )
        for offset, record in enumerate(five_letters())
    ]
    futures = [writer.send(source, "delivery", "HTTP 500") for source in sources]
    writer.settle(futures, timeout=30)
    writer.close(timeout=10)
    config = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits", "strict"])
    arguments = ["replay-dead-letters", "--topic", dead_letter_topic,
                 "--bootstrap-servers", kafka_bootstrap, "--group-id", "strict-test"]  # fmt: skip

    assert main([*arguments, "--config", str(config)]) == 1

    assert capsys.readouterr().err.splitlines()[-1] == (
        f"mixpanel-core: error: stopped at the dead letter at offset 2 of {dead_letter_topic}/0, "
        f"not sent: {ERROR}; the dead letters before it are committed"
    )
    assert mixpanel_emulator.client.stats()["accepted"]["import"] == 2
    assert committed_offset(kafka_bootstrap, dead_letter_topic, "strict-test") == 2

    # The plugin fixed (here: disabled), the rerun starts at that letter.
    fixed = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits"])
    assert main([*arguments, "--config", str(fixed)]) == 0
    stats = mixpanel_emulator.client.stats()
    assert stats["accepted"]["import"] == 5
    assert (stats["unique_events"], stats["duplicate_events"]) == (5, 0)
    assert committed_offset(kafka_bootstrap, dead_letter_topic, "strict-test") == 5


def test_a_file_replay_delivers_the_letters_before_the_one_a_plugin_raised_on(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    strict: None,
) -> None:
    lines = [
        {"endpoint": "import", "status": "failed", "reason": "HTTP 500", "record": record}
        for record in five_letters()
    ]
    dead_letters = write_ndjson(tmp_path / "dead-letters.jsonl", lines)
    config = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits", "strict"])

    code = main(["replay-dead-letters", "--file", str(dead_letters), "--config", str(config)])

    assert code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"mixpanel-core: error: stopped at dead letter 2 of {dead_letters} (counted from 0), "
        f"not sent: {ERROR}; the dead letters before it are delivered or kept (a rerun of "
        "the file sends them again)"
    )
    assert mixpanel_emulator.client.stats()["accepted"]["import"] == 2
    [summary] = [line for line in err if line.startswith("replayed ")]
    assert summary.startswith("replayed 2 dead letters: 2 accepted, 0 still failing"), summary
