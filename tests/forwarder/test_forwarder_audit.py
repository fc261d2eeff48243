"""Defects found auditing the forwarder, each against the real broker and the emulator: a
SIGTERM during a retry backoff must still commit what the batch's earlier requests delivered,
and a record with a null header value must not block its partition."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.forwarder.dead_letters import PREFIX
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python
from transports.kafka import KafkaTransport

from .conftest import ForwardingRig, wait_until

pytestmark = pytest.mark.integration

NULL = b"\x00null-header-value\x00"
"""Stands for a null header value on its way through kafka-python's producer (see below)."""


@pytest.fixture
def rig_partitions() -> int:
    """One partition: the records' offsets are the order they were produced in."""
    return 1


def _produce_with_null_header(
    rig: ForwardingRig,
    monkeypatch: pytest.MonkeyPatch,
    value: bytes,
    record_headers: list[tuple[str, bytes]],
) -> None:
    """A record whose headers equal to ``NULL`` have a null value on the wire.

    Kafka allows null header values and other clients (the Java one) write them; kafka-python's
    ``send`` refuses them, although its record builder encodes ``None`` as a null value. So
    ``NULL`` passes ``send``'s checks and is swapped for ``None`` where the record is encoded.
    """
    builder = kafka_python().record.memory_records.MemoryRecordsBuilder
    append = builder.append

    def append_with_nulls(self: Any, timestamp: Any, key: Any, data: Any, given: Any = None) -> Any:
        nulls = [(name, None if v == NULL else v) for name, v in given or ()]
        return append(self, timestamp, key, data, nulls)

    producer = kafka_python().KafkaProducer(bootstrap_servers=rig.bootstrap)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(builder, "append", append_with_nulls)
            producer.send(rig.topic, value=value, key=b"raw", headers=record_headers).get(30)
    finally:
        producer.close(10)


def test_a_poison_record_with_a_null_header_value_is_dead_lettered_and_its_partition_moves_on(
    rig: ForwardingRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = rig.produce_events(3, prefix="before")
    poison = [(headers.ENDPOINT, b"track"), ("trace-id", NULL)]
    _produce_with_null_header(rig, monkeypatch, b"{not json", poison)
    good += rig.produce_events(3, prefix="after")

    code, stderr = rig.run_until_caught_up(rig.write_config())

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(good)
    [letter] = rig.dead_letters(1)
    kept = dict(letter.headers)
    assert kept["trace-id"] == b"", "the null-valued header is kept, with an empty value"
    assert kept[PREFIX + "source-offset"] == b"3"
    assert kept[PREFIX + "stage"] == b"decode"
    assert rig.committed() == {0: 7}


def test_sigterm_during_a_retry_backoff_commits_what_earlier_requests_of_the_batch_delivered(
    rig: ForwardingRig,
) -> None:
    """One batch of 4 events goes out as two requests of 2. The first is accepted; the second
    gets a 429 asking for 30 s, and SIGTERM comes during that wait. The first two are
    delivered: they must be committed, not sent again by the next forwarder."""
    produced = rig.produce_events(4)
    config = rig.write_config({"shutdown_deadline": 1.0}, http={"max_batch_records": 2})
    emulator = rig.emulator.client
    # The emulator decides a request's fault after its latency: the second request is still
    # inside that latency when the first one's records show up, so the 429 below reaches it.
    emulator.set_latency(1.5)
    process = rig.start(config)
    rig.wait_for_delivered(2)
    emulator.fail_next(1, 429, endpoints=["track"], retry_after=30)
    emulator.set_latency(0)
    wait_until(lambda: "429" in emulator.stats()["requests"].get("track", {}), 30)

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    assert rig.delivered_insert_ids() == produced[:2], "the second request never got through"
    assert rig.committed() == {0: 2}, stderr

    # The next forwarder delivers the other two only. (Not with --until-caught-up: the
    # embedded broker reports the end of this topic as 1, the last batch's base offset + 1.)
    process = rig.start(config)
    rig.wait_for_delivered(4)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(produced), "each event sent once"
    assert rig.committed() == {0: 4}


def test_until_caught_up_reads_to_the_end_a_fetch_reports_not_only_the_listed_end(
    rig: ForwardingRig,
) -> None:
    """Four records in one batch, the group committed past the first two. The embedded broker
    lists the partition's end as 1 (the last batch's first offset, plus one) where a fetch
    reports 4: a run ended by the listed end left offsets 2 and 3 unread, exiting 0."""
    client = Mixpanel(
        "emulator-token", KafkaTransport(rig.bootstrap, rig.topic, {"linger_ms": 200})
    )
    for i in range(4):
        client.track(f"user-{i}", "Played", {"$insert_id": f"batched-{i}"})
    assert client.close(30) == []
    kafka = kafka_python()
    partition = kafka.TopicPartition(rig.topic, 0)
    committer = kafka.KafkaConsumer(
        bootstrap_servers=rig.bootstrap, group_id=rig.group, enable_auto_commit=False
    )
    try:
        committer.commit({partition: kafka.structs.OffsetAndMetadata(2, "", -1)})
    finally:
        committer.close(autocommit=False)

    code, stderr = rig.run_until_caught_up(rig.write_config())

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == ["batched-2", "batched-3"]
    assert rig.committed() == {0: 4}
