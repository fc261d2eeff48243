"""A record with neither key nor value, against the real broker and the emulator: kafka-python
cannot produce one, but other clients write them. The forwarder must dead-letter it (with an
empty value and a header saying it was null), deliver the records around it and commit past it,
instead of stopping on it at every start."""

from __future__ import annotations

import pytest

from mixpanel_core.forwarder.dead_letters import PREFIX
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration


@pytest.fixture
def rig_partitions() -> int:
    """One partition: the records' offsets are the order they were produced in."""
    return 1


def produce_null_record(bootstrap: str, topic: str) -> int:
    """A record with a null key and a null value, as a Java or librdkafka producer writes it;
    returns its offset.

    kafka-python's ``send`` refuses ``key=None, value=None`` before serializing; a key that
    serializes to ``None`` passes that check and puts a null key on the wire.
    """
    kafka = kafka_python()

    class NullKey(kafka.serializer.Serializer):  # type: ignore[name-defined,misc]
        def serialize(self, topic: str, record_headers: object, data: object) -> None:
            return None

    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, key_serializer=NullKey())
    try:
        stored = producer.send(
            topic, key="serialized-as-null", value=None, headers=[(headers.ENDPOINT, b"track")]
        ).get(30)
    finally:
        producer.close(10)
    offset: int = stored.offset
    return offset


def test_a_record_with_neither_key_nor_value_is_dead_lettered_and_its_partition_moves_on(
    rig: ForwardingRig,
) -> None:
    before = rig.produce_events(2, prefix="before")
    assert produce_null_record(rig.bootstrap, rig.topic) == 2
    after = rig.produce_events(3, prefix="after")

    # Stops waiting as soon as the forwarder exits: it used to stop on the record (exit 1).
    rig.run_until_committed(rig.write_config(), {0: 6})
    assert sorted(rig.delivered_insert_ids()) == sorted(before + after)
    assert rig.committed() == {0: 6}
    [letter] = rig.dead_letters(1)
    assert (letter.key, letter.value) == (None, b"")
    kept = dict(letter.headers)
    assert kept[PREFIX + "null-value"] == b"true"
    assert kept[PREFIX + "source-offset"] == b"2"
    assert kept[PREFIX + "stage"] == b"decode"
    assert kept[PREFIX + "reason"] == b"the record has no value"
    assert kept[headers.ENDPOINT] == b"track", "the record's own headers are kept"
