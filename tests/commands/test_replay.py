"""``mixpanel-core replay-dead-letters``: a fix-up plugin makes dead letters deliverable; from a
dead-letter file written by the buffered transport, and from the forwarder's dead-letter topic on
the real broker, with offsets committed only once the records are delivered or kept."""

from __future__ import annotations

import types
from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.config import load_config
from mixpanel_core.emulator import Emulator
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.messages import message_from_record
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.testing import install_distribution

from ..subprocesses import derived_insert_id_in_a_fresh_interpreter
from .conftest import events, read_lines, write_config, write_ndjson

pytestmark = pytest.mark.integration

FIX_PLUGIN = '''\
"""A fix-up plugin for the tests: event times written in microseconds become seconds."""

from mixpanel_core import hookimpl
from mixpanel_core.messages import Event


class FixTimes:
    @hookimpl
    def mixpanel_enrich(self, message):
        if isinstance(message, Event) and message.time > 1e14:
            return message.with_properties({"time": message.time / 1_000_000})
        return None
'''


@pytest.fixture
def fix_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Installs the ``fix_times`` plugin through a real entry point (a dist-info on sys.path)."""
    root = install_distribution(
        tmp_path / "site",
        "fix-times",
        {"mixpanel_core.plugins": {"fix_times": "fix_times:FixTimes"}},
        {"fix_times": FIX_PLUGIN},
    )
    monkeypatch.syspath_prepend(str(root))
    return "fix_times"


def in_microseconds(records: list[dict[str, object]]) -> list[dict[str, object]]:
    for record in records:
        properties = record["properties"]
        assert isinstance(properties, dict)
        properties["time"] = int(properties["time"] * 1_000_000)
        properties["token"] = "emulator-token"
    return records


def test_replay_from_a_dead_letter_file_after_a_fix_up_plugin_delivers(
    tmp_path: Path, mixpanel_emulator: Emulator, fix_times: str
) -> None:
    # First, the buffered transport dead-letters what Mixpanel refuses (no plugins to stop it).
    dead_letters = tmp_path / "dead-letters.jsonl"
    sending = write_config(
        tmp_path, mixpanel_emulator, plugins=[], extra=f'dead_letter_path = "{dead_letters}"\n'
    )
    pipeline = Pipeline.from_config(load_config(sending))

    bad = in_microseconds(events(6))
    for n, record in enumerate(bad):
        record["properties"]["$insert_id"] = f"replayed-{n}"  # type: ignore[index]
        pipeline.submit(message_from_record("import", record))
    assert pipeline.close() == []
    assert len(read_lines(dead_letters)) == 6
    assert mixpanel_emulator.client.records("import") == []

    # Then the replay, with the default plugins and the fix-up first.
    config = write_config(tmp_path, mixpanel_emulator)
    still_bad = tmp_path / "still-bad.jsonl"
    code = main(
        ["replay-dead-letters", "--file", str(dead_letters), "--fix", fix_times,
         "--config", str(config), "--rejected-file", str(still_bad)]
    )  # fmt: skip

    assert code == 0
    assert sorted(mixpanel_emulator.client.insert_ids("import")) == [
        f"replayed-{n}" for n in range(6)
    ]
    assert all(r["properties"]["time"] < 1e10 for r in mixpanel_emulator.client.records("import"))
    assert read_lines(still_bad) == []


def test_the_rejected_file_of_send_replays_with_the_same_insert_ids(
    tmp_path: Path, mixpanel_emulator: Emulator, fix_times: str
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", [*events(2), *in_microseconds(events(3))])
    rejected = tmp_path / "rejected.jsonl"
    assert (
        main(["send", str(source), "--config", str(config), "--rejected-file", str(rejected)]) == 0
    )
    kept = read_lines(rejected)
    assert [k["index"] for k in kept] == [2, 3, 4]

    code = main(["replay-dead-letters", "--file", str(rejected), "--fix", fix_times,
                 "--config", str(config)])  # fmt: skip

    assert code == 0
    ids = mixpanel_emulator.client.insert_ids("import")
    assert len(ids) == 5
    assert ids[2:] == [k["record"]["properties"]["$insert_id"] for k in kept]


def test_without_the_fix_the_records_still_fail_and_are_kept_with_the_reason(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    dead_letters = tmp_path / "dead-letters.jsonl"
    lines = [{"endpoint": "import", "record": r} for r in in_microseconds(events(2))]
    dead_letters.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines) + b"oops\n")
    config = write_config(tmp_path, mixpanel_emulator)
    still_bad = tmp_path / "still-bad.jsonl"

    code = main(
        ["replay-dead-letters", "--file", str(dead_letters), "--config", str(config),
         "--rejected-file", str(still_bad)]
    )  # fmt: skip

    assert code == 0
    kept = read_lines(still_bad)
    assert [(k["index"], k["field"]) for k in kept[:2]] == [
        (0, "properties.time"),
        (1, "properties.time"),
    ]
    assert kept[2]["stage"] == "read"
    assert mixpanel_emulator.client.records("import") == []
    # ... and without a rejected file that is a failure, named in one line.
    assert main(["replay-dead-letters", "--file", str(dead_letters), "--config", str(config)]) == 1


def test_a_dry_run_sends_and_writes_nothing(
    tmp_path: Path, mixpanel_emulator: Emulator, fix_times: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dead_letters = tmp_path / "dead-letters.jsonl"
    lines = [{"endpoint": "import", "record": r} for r in in_microseconds(events(3))]
    dead_letters.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    config = write_config(tmp_path, mixpanel_emulator)
    still_bad = tmp_path / "still-bad.jsonl"

    code = main(
        ["replay-dead-letters", "--file", str(dead_letters), "--fix", fix_times, "--dry-run",
         "--config", str(config), "--rejected-file", str(still_bad)]
    )  # fmt: skip

    assert code == 0
    assert "dry run: read 3 dead letters: 3 would be sent, 0 would still fail" in (
        capsys.readouterr().err
    )
    assert mixpanel_emulator.client.stats()["requests"] == {}
    assert not still_bad.exists()


def _produce_dead_letters(
    bootstrap: str, dead_letter_topic: str, source_topic: str, linger_ms: int = 0
) -> dict[int, int]:
    """Dead letters exactly as the forwarder writes them (its own writer, a real producer).

    Returns the offset after the last record of each partition written to.
    """
    kafka = kafka_python()
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms)
    writer = DeadLetterWriter(producer, dead_letter_topic, "mixpanel-forwarder")
    original = [(headers.ENDPOINT, b"import"), (headers.SCHEMA, headers.SCHEMA_VERSION.encode())]
    records = in_microseconds(events(5))
    del records[0]["properties"]["token"]  # type: ignore[attr-defined]
    futures = []
    for offset, record in enumerate(records):
        raw = types.SimpleNamespace(
            topic=source_topic,
            partition=0,
            offset=offset,
            key=b"user",
            value=orjson.dumps(record),
            headers=original,
        )
        futures.append(writer.send(raw, "delivery", "properties.time: in the future"))
    poison = types.SimpleNamespace(
        topic=source_topic, partition=0, offset=99, key=None, value=b"{not json", headers=original
    )
    futures.append(writer.send(poison, "decode", "the value is not JSON"))
    writer.settle(futures, timeout=30)
    writer.close(timeout=10)
    ends: dict[int, int] = {}
    for future in futures:
        stored = future.get(timeout=0)
        ends[stored.partition] = max(ends.get(stored.partition, 0), stored.offset + 1)
    return ends


def test_replay_from_the_dead_letter_topic_delivers_commits_and_stops_when_caught_up(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: object,
    fix_times: str,
) -> None:
    make_topic = kafka_topic_factory
    assert callable(make_topic)
    source_topic, dead_letter_topic = make_topic(partitions=1), make_topic(partitions=2)
    ends = _produce_dead_letters(kafka_bootstrap, dead_letter_topic, source_topic)
    forwarder = f"""
[transports.bus]
type = "kafka"
bootstrap_servers = "{kafka_bootstrap}"
topic = "{source_topic}"

[forwarder]
source = "bus"
dead_letter_topic = "{dead_letter_topic}"
"""
    config = write_config(tmp_path, mixpanel_emulator, extra=forwarder)
    still_bad = tmp_path / "still-bad.jsonl"
    arguments = ["replay-dead-letters", "--topic", dead_letter_topic, "--config", str(config),
                 "--fix", fix_times, "--transport", "direct", "--rejected-file", str(still_bad),
                 "--group-id", "replay-test"]  # fmt: skip

    assert main(arguments) == 0

    client = mixpanel_emulator.client
    records = client.records("import")
    assert sorted(r["properties"]["n"] for r in records) == [0, 1, 2, 3, 4]
    # The record without a token got the configured one; its insert id is the one the
    # forwarder derived from the source position, so an earlier delivery would deduplicate:
    # computed in another interpreter, as the forwarder that first read the record would.
    assert derived_insert_id_in_a_fresh_interpreter(source_topic, 0, 0) in client.insert_ids(
        "import"
    )
    (poison,) = read_lines(still_bad)
    assert poison["stage"] == "read"
    assert "not JSON" in poison["reason"]

    kafka = kafka_python()
    reader = kafka.KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id="replay-test")
    try:
        committed = {p: reader.committed(kafka.TopicPartition(dead_letter_topic, p)) for p in ends}
        assert committed == ends
    finally:
        reader.close()

    # Caught up and committed: a second replay reads nothing and sends nothing.
    assert main(arguments) == 0
    assert len(client.records("import")) == 5


def test_replay_reads_to_the_end_a_fetch_reports_not_only_the_listed_end(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: object,
    fix_times: str,
) -> None:
    """Six dead letters in one batch of one partition, the group committed past the first
    three. The embedded broker lists the end as 1 (the batch's first offset, plus one) where a
    fetch reports 6: a replay that trusted the listed end read nothing and exited 0."""
    make_topic = kafka_topic_factory
    assert callable(make_topic)
    source_topic, dead_letter_topic = make_topic(partitions=1), make_topic(partitions=1)
    ends = _produce_dead_letters(kafka_bootstrap, dead_letter_topic, source_topic, linger_ms=200)
    assert ends == {0: 6}
    kafka = kafka_python()
    partition = kafka.TopicPartition(dead_letter_topic, 0)
    committer = kafka.KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id="replay-ends")
    try:
        committer.commit({partition: kafka.structs.OffsetAndMetadata(3, "", -1)})
    finally:
        committer.close(autocommit=False)
    config = write_config(tmp_path, mixpanel_emulator)
    still_bad = tmp_path / "still-bad.jsonl"
    arguments = ["replay-dead-letters", "--topic", dead_letter_topic, "--config", str(config),
                 "--bootstrap-servers", kafka_bootstrap, "--fix", fix_times,
                 "--transport", "direct", "--rejected-file", str(still_bad),
                 "--group-id", "replay-ends"]  # fmt: skip

    assert main(arguments) == 0

    records = mixpanel_emulator.client.records("import")
    assert sorted(r["properties"]["n"] for r in records) == [3, 4]
    assert [line["stage"] for line in read_lines(still_bad)] == ["read"]  # the poison, at 5


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay-dead-letters", "--help"])
    out = capsys.readouterr().out
    assert "mixpanel-core replay-dead-letters --file dead-letters.jsonl --fix fix_times" in out
    assert "exit codes:" in out
