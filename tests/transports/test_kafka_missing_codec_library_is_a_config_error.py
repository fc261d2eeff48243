"""A ``compression_type`` whose library is not installed (kafka-python raises ``RuntimeError``
for it) is a ``ConfigError`` naming the producer table and quoting the reason, when the
transport is built: not a bare ``RuntimeError`` out of the pipeline's construction."""

from __future__ import annotations

import kafka.codec
import pytest

from mixpanel_core.errors import ConfigError
from mixpanel_core.transport import TransportContext
from transports.kafka import KafkaTransport

pytestmark = pytest.mark.integration


def test_a_codec_whose_library_is_missing_is_a_config_error(
    kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As kafka-python sees it without zstandard, installed here or not (never skipped).
    monkeypatch.setattr(kafka.codec, "zstd", None)
    options = {
        "bootstrap_servers": kafka_bootstrap,
        "topic": kafka_topic,
        "producer": {"compression_type": "zstd"},
    }
    with pytest.raises(ConfigError) as raised:
        KafkaTransport.from_config(options, TransportContext("bus"))
    text = str(raised.value)
    assert text.startswith("transports.bus.producer: kafka-python refused the options: ")
    assert "Libraries for zstd compression codec not found" in text
