"""``send`` and ``replay-dead-letters`` through a ``kafka`` transport on the real broker: each
record is confirmed by its ACCEPTED report, so a run exits 0, commits or checkpoints, and a
second run produces nothing again.

Before the ``kafka`` transport made each report before ``flush()`` counted the record settled,
the commands saw records neither reported nor returned, called them undelivered, exited 1
without committing, and produced the same records again on every rerun. A plugin that takes a
few milliseconds per report (as one writing an audit log does) makes that race lose every time.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator
from mixpanel_core.forwarder.dead_letters import DeadLetterWriter
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.fixtures import read_records
from mixpanel_core.testing import install_distribution

from .conftest import events, write_config, write_ndjson

pytestmark = pytest.mark.integration

RECORDS = 20

SLOW_AUDIT = """\
\"\"\"A plugin for the tests that takes a few milliseconds over each delivery report.\"\"\"

import time

from mixpanel_core import hookimpl


class SlowAudit:
    @hookimpl
    def mixpanel_delivered(self, report):
        time.sleep(0.005)
"""


@pytest.fixture(autouse=True)
def slow_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installs the ``slow_audit`` plugin through a real entry point; the config enables it."""
    root = install_distribution(
        tmp_path / "site",
        "slow-audit",
        {"mixpanel_core.plugins": {"slow_audit": "slow_audit:SlowAudit"}},
        {"slow_audit": SLOW_AUDIT},
    )
    monkeypatch.syspath_prepend(str(root))


def _kafka_config(tmp_path: Path, emulator: Emulator, bootstrap: str, topics: list[str]) -> Path:
    """The emulator as Mixpanel, the transport ``out`` that the commands send through
    (``--transport out``) and a forwarder: ``topics`` are out's, the source's, the dead letters'."""
    out_topic, source_topic, dead_letter_topic = topics
    extra = f"""
[transports.out]
type = "kafka"
bootstrap_servers = "{bootstrap}"
topic = "{out_topic}"

[transports.bus]
type = "kafka"
bootstrap_servers = "{bootstrap}"
topic = "{source_topic}"

[forwarder]
source = "bus"
dead_letter_topic = "{dead_letter_topic}"
"""
    return write_config(tmp_path, emulator, plugins=["mixpanel_limits", "slow_audit"], extra=extra)


def _produce_dead_letters(bootstrap: str, dead_letter_topic: str, source_topic: str) -> int:
    """``RECORDS`` deliverable dead letters, as the forwarder writes them; the end offset."""
    producer = kafka_python().KafkaProducer(bootstrap_servers=bootstrap)
    writer = DeadLetterWriter(producer, dead_letter_topic, "mixpanel-forwarder")
    original = [(headers.ENDPOINT, b"import"), (headers.SCHEMA, headers.SCHEMA_VERSION.encode())]
    futures = []
    for offset, record in enumerate(events(RECORDS)):
        raw = types.SimpleNamespace(
            topic=source_topic,
            partition=0,
            offset=offset,
            key=b"user",
            value=orjson.dumps(record),
            headers=original,
        )
        futures.append(writer.send(raw, "delivery", "Mixpanel was down"))
    writer.settle(futures, timeout=30)
    writer.close(timeout=10)
    return int(max(future.get(timeout=0).offset for future in futures)) + 1


def test_replay_dead_letters_through_a_kafka_transport_exits_0_commits_and_sends_once(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
) -> None:
    source, dead_letters, out = (kafka_topic_factory(partitions=1) for _ in range(3))
    end = _produce_dead_letters(kafka_bootstrap, dead_letters, source)
    config = _kafka_config(
        tmp_path, mixpanel_emulator, kafka_bootstrap, [out, source, dead_letters]
    )
    arguments = ["replay-dead-letters", "--topic", dead_letters, "--config", str(config),
                 "--transport", "out", "--group-id", "replay-through-kafka"]  # fmt: skip

    assert main(arguments) == 0

    assert len(read_records(kafka_bootstrap, out, RECORDS + 1, timeout_ms=2000)) == RECORDS
    kafka = kafka_python()
    checker = kafka.KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id="replay-through-kafka"
    )
    try:
        committed = checker.committed(kafka.TopicPartition(dead_letters, 0))
    finally:
        checker.close()
    assert committed == end

    # Caught up: a second replay reads nothing and produces nothing again.
    assert main(arguments) == 0
    assert len(read_records(kafka_bootstrap, out, RECORDS + 1, timeout_ms=2000)) == RECORDS


def test_send_through_a_kafka_transport_exits_0_and_a_rerun_sends_nothing_again(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    topics = [kafka_topic_factory(partitions=1) for _ in range(3)]
    out = topics[0]
    config = _kafka_config(tmp_path, mixpanel_emulator, kafka_bootstrap, topics)
    records = write_ndjson(tmp_path / "events.ndjson", events(RECORDS))
    checkpoint = tmp_path / "send.checkpoint"
    arguments = ["send", str(records), "--config", str(config), "--transport", "out",
                 "--checkpoint", str(checkpoint)]  # fmt: skip

    assert main(arguments) == 0

    assert f"{RECORDS} accepted" in capsys.readouterr().err
    assert len(read_records(kafka_bootstrap, out, RECORDS + 1, timeout_ms=2000)) == RECORDS
    assert main(arguments) == 0  # the checkpoint says the file is done
    assert len(read_records(kafka_bootstrap, out, RECORDS + 1, timeout_ms=2000)) == RECORDS
