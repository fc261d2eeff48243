"""A lone surrogate in a string (``"file\\udcff.txt"``: what ``os.fsdecode`` gives for a byte
that is not UTF-8) is JSON the official SDK sends, as the escape ``\\udcff``. Each place below
encoded such a string as UTF-8 and raised: the validator (a ``PluginError`` for an invalid
``$insert_id``, instead of the problem named), the redaction plugin's hashing, the ``kafka``
transport's record key (the record reported FAILED). (The emulator's answers to such records:
tests/emulator/test_emulator_odd_json.py.)"""

from __future__ import annotations

import pytest

from mixpanel_core import Mixpanel, ValidationError
from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.kafka.fixtures import read_records
from mixpanel_core.testing import MemoryTransport, memory_client
from mixpanel_core.transport import TransportContext
from transports.kafka import KafkaTransport

ODD = "file\udcff.txt"


def test_an_insert_id_with_a_lone_surrogate_is_a_validation_problem_naming_it() -> None:
    client, _ = memory_client("token")
    with pytest.raises(ValidationError) as raised:
        client.track("u1", "Opened", {"$insert_id": ODD})
    assert "properties.$insert_id" in str(raised.value)


def test_a_value_with_a_lone_surrogate_is_hashed_by_redaction() -> None:
    config = config_from_mapping(
        {"plugins": {"enabled": ["redaction"], "redaction": {"hash": ["file"], "salt": "s"}}}
    )
    transport = MemoryTransport()
    client = Mixpanel("token", transport, config=config)
    client.track("u1", "Opened", {"file": ODD})
    client.track("u1", "Opened", {"file": "file\udcfe.txt"})
    first, second = (record["properties"]["file"] for record in transport.records())
    assert len(first) == 64  # a digest
    assert first != second  # of each value


@pytest.mark.integration
def test_a_distinct_id_with_a_lone_surrogate_is_produced_to_kafka(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    reports: list[DeliveryReport] = []
    transport = KafkaTransport.from_config(
        {"bootstrap_servers": kafka_bootstrap, "topic": kafka_topic},
        TransportContext("bus", report=reports.append),
    )
    client, memory = memory_client("token")
    client.track(ODD, "Opened")
    try:
        transport.send(memory.messages[0])
        assert transport.flush(30) == []
    finally:
        transport.close(5)
    assert [r.status for r in reports] == [DeliveryStatus.ACCEPTED]
    [record] = read_records(kafka_bootstrap, kafka_topic, 1)
    assert record.key == b"file\\udcff.txt"
