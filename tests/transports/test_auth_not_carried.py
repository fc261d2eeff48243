"""Per-call legacy credentials (``import_data(api_key=..., api_secret=...)``, ``merge``) are not
written to a queue or a topic: the transports that cannot carry them say so, once, in the log
(docs/transports/kafka.md, docs/transports/multiprocessing_queue.md), since the settings that
authenticate ``/import`` instead also decide which project the records land in.
"""

from __future__ import annotations

import logging
import time

import pytest

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import config_from_mapping
from transports.kafka import KafkaTransport

SECRET = "per-call-secret-4f1c"
TOLD = "does not carry the api_key/api_secret given to import_data() or merge()"


def _import_twice(client: Mixpanel) -> None:
    when = int(time.time()) - 60
    client.import_data("legacy-key", "u-1", "Old", when, api_secret=SECRET)
    client.merge("legacy-key", "u-1", "u-2", api_secret=SECRET)


def _told(caplog: pytest.LogCaptureFixture, transport: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if TOLD in r.getMessage() and repr(transport) in r.getMessage()
    ]


@pytest.mark.integration
def test_the_kafka_transport_says_once_that_credentials_stay_behind(
    kafka_bootstrap: str, kafka_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, name="bus-auth-test")
    client = Mixpanel("emulator-token", transport)
    caplog.set_level(logging.WARNING, logger="mixpanel_core.transport")
    try:
        client.track("u-1", "Without credentials")
        assert _told(caplog, "bus-auth-test") == []
        _import_twice(client)
        _import_twice(client)
    finally:
        assert client.close(30) == []
    [told] = _told(caplog, "bus-auth-test")
    assert "the forwarder's [mixpanel] settings" in told
    assert SECRET not in caplog.text


def test_the_multiprocessing_queue_says_once_that_credentials_stay_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = config_from_mapping(
        {
            "mixpanel": {"token": "t"},
            "routes": [{"transport": "queue-auth-test"}],
            "transports": {
                "queue-auth-test": {"type": "multiprocessing_queue", "inner": "sink"},
                "sink": {"type": "memory"},
            },
        }
    )
    client = Mixpanel("t", config=config)
    caplog.set_level(logging.WARNING, logger="mixpanel_core.transport")
    try:
        client.track("u-1", "Without credentials")
        assert _told(caplog, "queue-auth-test") == []
        _import_twice(client)
        _import_twice(client)
    finally:
        assert client.close(30) == []
    [told] = _told(caplog, "queue-auth-test")
    assert "the process owning the queue" in told
    assert SECRET not in caplog.text
