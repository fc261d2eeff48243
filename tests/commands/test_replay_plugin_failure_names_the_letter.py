"""``replay-dead-letters`` stopped at a dead letter refused by raising: a plugin that raises on
it (installed through a real entry point), or ``[[routes]]`` that take none for it (review R42
F1), against the emulator and the real broker. The letters before it are delivered and, on a
topic, committed before the command stops naming it, so the rerun once the plugin or the routes
are fixed starts at that letter and sends none of them again.

Before, the batch stopped uncommitted at the letter while the letters before it were delivered
as the transports closed: each rerun sent them again (a profile's ``$add`` applied once more
each time), and the error did not say which letter it was."""

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
from .conftest import TOKEN, events, write_config, write_ndjson

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


def dead_letter_file(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    """``records`` as the dead letters of /import a 500 failed, one JSON line each."""
    lines = [
        {"endpoint": "import", "status": "failed", "reason": "HTTP 500", "record": record}
        for record in records
    ]
    return write_ndjson(tmp_path / "dead-letters.jsonl", lines)


def produce_dead_letters(
    bootstrap: str, topic: str, records: list[tuple[str, dict[str, Any]]]
) -> None:
    """``(endpoint, record)`` pairs as the forwarder dead-letters them (its own writer)."""
    producer = kafka_python().KafkaProducer(bootstrap_servers=bootstrap)
    writer = DeadLetterWriter(producer, topic, "mixpanel-forwarder")
    sources = [
        types.SimpleNamespace(
            topic="events",
            partition=0,
            offset=offset,
            key=b"user",
            value=orjson.dumps(record),
            headers=[
                (headers.ENDPOINT, endpoint.encode()),
                (headers.SCHEMA, headers.SCHEMA_VERSION.encode()),
            ],
        )
        for offset, (endpoint, record) in enumerate(records)
    ]
    writer.settle([writer.send(source, "delivery", "HTTP 500") for source in sources], timeout=30)
    writer.close(timeout=10)


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
    letters = [("import", record) for record in five_letters()]
    produce_dead_letters(kafka_bootstrap, dead_letter_topic, letters)
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
    dead_letters = dead_letter_file(tmp_path, five_letters())
    config = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits", "strict"])

    code = main(["replay-dead-letters", "--file", str(dead_letters), "--config", str(config)])

    assert code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        f"mixpanel-core: error: stopped at dead letter 2 of {dead_letters} (counted from 0), "
        f"not sent: {ERROR}; the dead letters before it are delivered or kept (a rerun of "
        "the file sends them all again; give --checkpoint to resume instead)"
    )
    assert mixpanel_emulator.client.stats()["accepted"]["import"] == 2
    [summary] = [line for line in err if line.startswith("replayed ")]
    assert summary.startswith("replayed 2 dead letters: 2 accepted, 0 still failing"), summary


def test_a_topic_replay_commits_the_letters_before_one_no_route_takes(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``[[routes]]`` that take only /engage: the /import letter among profile ``$add``s stops
    the replay (review R42 F1: the two ``$add``s before it were applied once more by each run)."""
    dead_letter_topic = kafka_topic_factory(partitions=1)
    adds = [{"$token": TOKEN, "$distinct_id": f"user-{n}", "$add": {"visits": 1}} for n in range(4)]
    [event] = events(1)
    event["properties"]["$insert_id"] = "the-import-event"
    letters = [("engage", adds[0]), ("engage", adds[1]), ("import", event), ("engage", adds[3])]
    produce_dead_letters(kafka_bootstrap, dead_letter_topic, letters)
    only_engage = '[[routes]]\nendpoints = ["engage"]\ntransport = "direct"\n'
    arguments = ["replay-dead-letters", "--topic", dead_letter_topic,
                 "--bootstrap-servers", kafka_bootstrap, "--group-id", "routes-test"]  # fmt: skip

    for run in range(2):  # each run stops at the same letter, applying nothing twice
        config = write_config(tmp_path, mixpanel_emulator, extra=only_engage)
        assert main([*arguments, "--config", str(config)]) == 1, run
        err = capsys.readouterr().err.splitlines()
        assert err[-1].startswith(
            f"mixpanel-core: error: stopped at the dead letter at offset 2 of "
            f"{dead_letter_topic}/0, not sent: routes: no route takes import messages"
        ), err
        assert err[-1].endswith("; the dead letters before it are committed"), err
        [summary] = [line for line in err if line.startswith("replayed ")]
        expected = "replayed 2 dead letters: 2 accepted" if run == 0 else "replayed 0 dead"
        assert summary.startswith(expected), summary
        assert committed_offset(kafka_bootstrap, dead_letter_topic, "routes-test") == 2

    assert main([*arguments, "--config", str(write_config(tmp_path, mixpanel_emulator))]) == 0
    profiles = [r["$distinct_id"] for r in mixpanel_emulator.client.records("engage")]
    assert sorted(profiles) == ["user-0", "user-1", "user-3"]
    assert len(mixpanel_emulator.client.records("import")) == 1


def test_a_dry_run_stopped_by_a_plugin_says_nothing_was_sent(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    strict: None,
) -> None:
    """Review R42 F2: it said the letters before it were "delivered or kept"."""
    dead_letters = dead_letter_file(tmp_path, five_letters())
    config = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits", "strict"])

    code = main(
        ["replay-dead-letters", "--file", str(dead_letters), "--config", str(config), "--dry-run"]
    )

    assert code == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.endswith(
        f"not sent: {ERROR}; the dead letters before it are checked; nothing was sent or committed"
    ), last
    assert mixpanel_emulator.client.stats()["accepted"]["import"] == 0


def test_a_file_replay_stopped_by_a_plugin_names_the_letters_before_it_not_kept(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    strict: None,
) -> None:
    """Review R42 F3: with one letter before it invalid and no --rejected-file, the error said
    every letter before it was "delivered or kept"."""
    records = five_letters()
    records[1]["properties"]["time"] = "yesterday"
    dead_letters = dead_letter_file(tmp_path, records)
    config = write_config(tmp_path, mixpanel_emulator, plugins=["mixpanel_limits", "strict"])

    code = main(["replay-dead-letters", "--file", str(dead_letters), "--config", str(config)])

    assert code == 1
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith(
            f"not sent: {ERROR}; the dead letters before it are delivered, but 1 of them still "
            "fail and were not kept (give --rejected-file to keep them); a rerun of the file "
            "sends them all again; give --checkpoint to resume instead"
        )
    )
    assert mixpanel_emulator.client.stats()["accepted"]["import"] == 1
