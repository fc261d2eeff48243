"""``replay-dead-letters --topic`` commits past what it writes to the rejected file, so each line
must hold the whole dead letter: its complete value (text, or base64 when it is not UTF-8) and
its ``dead-letter-*`` headers. Against the real broker, with dead letters written by the
forwarder's own writer, including one for a record that had neither key nor value."""

from __future__ import annotations

import base64
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.commands.sources import SHOWN_TEXT
from mixpanel_core.emulator import Emulator
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python

from .conftest import TOKEN, events, read_lines, write_config

pytestmark = pytest.mark.integration

SOURCE_TOPIC = "mixpanel"
ORIGINAL_HEADERS = [(headers.ENDPOINT, b"import")]
MAX_REQUEST_SIZE = 8192
"""The dead-letter producer's: a value above it is dead-lettered truncated."""

NOT_JSON = b'{"event": "x", "properties": ' + b"1" * 300 + "\u00e9 oops".encode()
NOT_UTF8 = b"\xff\xfe" + bytes(range(256)) * 2
TOO_BIG = orjson.dumps(list(range(5000)))


def _write_dead_letters(bootstrap: str, topic: str, values: list[bytes | None]) -> None:
    """One dead letter per value, as the forwarder writes it, from source offsets 0, 1, ..."""
    producer = kafka_python().KafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=MAX_REQUEST_SIZE
    )
    writer = DeadLetterWriter(producer, topic, "mixpanel-forwarder")
    futures = []
    for offset, value in enumerate(values):
        raw = types.SimpleNamespace(
            topic=SOURCE_TOPIC,
            partition=0,
            offset=offset,
            key=None,
            value=value,
            headers=ORIGINAL_HEADERS,
        )
        futures.append(writer.send(raw, "decode", f"poison {offset}"))
    writer.settle(futures, timeout=30)
    writer.close(timeout=10)


def _replay(
    tmp_path: Path, emulator: Emulator, bootstrap: str, topic: str, retry_budget: float = 5.0
) -> list[dict[str, Any]]:
    """Replays ``topic`` into a rejected file; returns its lines (the command must exit 0)."""
    config = write_config(tmp_path, emulator, retry_budget=retry_budget)
    rejected = tmp_path / "still-bad.jsonl"
    code = main(
        ["replay-dead-letters", "--topic", topic, "--config", str(config),
         "--bootstrap-servers", bootstrap, "--transport", "direct",
         "--rejected-file", str(rejected), "--group-id", f"replay-{topic}"]
    )  # fmt: skip
    assert code == 0
    return read_lines(rejected)


def _committed(bootstrap: str, topic: str) -> int | None:
    kafka = kafka_python()
    reader = kafka.KafkaConsumer(bootstrap_servers=bootstrap, group_id=f"replay-{topic}")
    try:
        committed: int | None = reader.committed(kafka.TopicPartition(topic, 0))
        return committed
    finally:
        reader.close(autocommit=False)


def _by_source_offset(lines: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {int(line["dead_letter"]["dead-letter-source-offset"]): line for line in lines}


def test_a_rejected_dead_letter_keeps_its_whole_value_and_its_dead_letter_headers(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
) -> None:
    topic = kafka_topic_factory(partitions=1)
    in_the_future = events(1)[0]
    in_the_future["properties"]["time"] *= 1_000_000  # mixpanel_limits refuses it
    _write_dead_letters(
        kafka_bootstrap,
        topic,
        [NOT_JSON, NOT_UTF8, TOO_BIG, orjson.dumps(in_the_future), orjson.dumps(events(1)[0])],
    )

    lines = _by_source_offset(_replay(tmp_path, mixpanel_emulator, kafka_bootstrap, topic))

    assert sorted(lines) == [0, 1, 2, 3], "the last one was delivered"
    assert len(mixpanel_emulator.client.records("import")) == 1
    assert _committed(kafka_bootstrap, topic) == 5, "the replay committed past every one"

    text = lines[0]
    assert (text["stage"], text["record_encoding"]) == ("read", "text")
    assert text["record"] == NOT_JSON.decode(), "all of it, not the first 200 characters"
    assert text["dead_letter"]["dead-letter-source-topic"] == SOURCE_TOPIC
    assert text["dead_letter"]["dead-letter-reason"] == "poison 0"
    assert text["dead_letter"]["dead-letter-stage"] == "decode"

    binary = lines[1]
    assert binary["record_encoding"] == "base64"
    assert base64.b64decode(binary["record"]) == NOT_UTF8

    truncated = lines[2]
    assert truncated["dead_letter"]["dead-letter-truncated"] == str(len(TOO_BIG))
    assert truncated["record_encoding"] == "text"
    assert SHOWN_TEXT < len(truncated["record"]) < len(TOO_BIG)
    assert TOO_BIG.decode().startswith(truncated["record"]), "what the dead letter kept, whole"

    refused = lines[3]
    assert (refused["stage"], refused["field"]) == ("validation", "properties.time")
    assert refused["record"]["properties"]["time"] == in_the_future["properties"]["time"]
    assert "record_encoding" not in refused, "the record itself, not an encoding of it"
    assert refused["dead_letter"]["dead-letter-source-offset"] == "3"

    # Replaying the rejected file keeps all of that on the lines it rejects again.
    again = tmp_path / "still-bad-again.jsonl"
    config = tmp_path / "mixpanel.toml"
    code = main(["replay-dead-letters", "--file", str(tmp_path / "still-bad.jsonl"),
                 "--config", str(config), "--rejected-file", str(again)])  # fmt: skip
    assert code == 0
    kept = [(k.get("record_encoding"), k["record"], k["dead_letter"]) for k in read_lines(again)]
    assert kept == [
        (line.get("record_encoding"), line["record"], line["dead_letter"])
        for line in lines.values()
    ]


def test_the_dead_letter_of_a_record_without_key_or_value_is_rejected_not_replayed(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
) -> None:
    topic = kafka_topic_factory(partitions=1)
    _write_dead_letters(kafka_bootstrap, topic, [None, orjson.dumps(events(1)[0])])

    [line] = _replay(tmp_path, mixpanel_emulator, kafka_bootstrap, topic)

    assert line["stage"] == "read"
    assert line["reason"] == "the record has no value"
    assert line["record"] is None
    assert line["dead_letter"]["dead-letter-null-value"] == "true"
    assert line["dead_letter"]["dead-letter-source-offset"] == "0"
    assert len(mixpanel_emulator.client.records("import")) == 1
    assert _committed(kafka_bootstrap, topic) == 2


def test_each_rejected_line_carries_its_own_dead_letter_whatever_the_insert_ids(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
) -> None:
    """Three dead letters fail again at delivery (Mixpanel answers 503): a profile update, which
    has no ``$insert_id``, and two events sharing one (a record dead-lettered twice). A report
    was traced back to its letter by ``$insert_id`` alone: the profile update's line had no
    ``dead_letter`` nor source, and the first event's line carried the second's."""
    topic = kafka_topic_factory(partitions=1)
    now = time.time() - 60
    values = [
        (b"engage", {"$token": TOKEN, "$distinct_id": "u1", "$add": {"logins": 1}}),
        (b"track", {"event": "e", "properties": {"token": TOKEN, "distinct_id": "u1",
                                                "time": now, "$insert_id": "same-id"}}),
        (b"track", {"event": "e", "properties": {"token": TOKEN, "distinct_id": "u2",
                                                "time": now + 1, "$insert_id": "same-id"}}),
    ]  # fmt: skip
    producer = kafka_python().KafkaProducer(bootstrap_servers=kafka_bootstrap)
    writer = DeadLetterWriter(producer, topic, "mixpanel-forwarder")
    futures = [
        writer.send(
            types.SimpleNamespace(
                topic=SOURCE_TOPIC,
                partition=0,
                offset=offset,
                key=b"k",
                value=orjson.dumps(value),
                headers=[(headers.ENDPOINT, endpoint)],
            ),
            "delivery",
            f"rejected by Mixpanel ({offset})",
        )
        for offset, (endpoint, value) in enumerate(values)
    ]
    writer.settle(futures, timeout=30)
    writer.close(timeout=10)
    mixpanel_emulator.client.fail_next(1000, status=503)
    replayed = _replay(tmp_path, mixpanel_emulator, kafka_bootstrap, topic, retry_budget=0.2)
    lines = _by_source_offset(replayed)
    assert sorted(lines) == [0, 1, 2]
    for offset, line in lines.items():
        assert line["stage"] == "delivery"
        assert line["index"] == offset
        assert line["dead_letter"]["dead-letter-reason"] == f"rejected by Mixpanel ({offset})"
        who = line["record"].get("$distinct_id") or line["record"]["properties"]["distinct_id"]
        assert who == ("u2" if offset == 2 else "u1")
    assert _committed(kafka_bootstrap, topic) == 3
