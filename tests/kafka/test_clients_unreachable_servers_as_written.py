"""A client that reaches no broker names the servers as the file writes them.

Review F1: given as a list, as every sample configuration does, they were quoted as Python
writes a list (``cannot reach Kafka at ['127.0.0.1:1']``), where the docs say ``HOST:PORT``.
"""

from __future__ import annotations

import pytest

from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client

pytestmark = pytest.mark.integration


@pytest.mark.timeout(60)
def test_servers_given_as_a_list_are_named_host_port_comma_separated() -> None:
    # Ports 1 and 2 of loopback: nothing listens there, so no broker answers.
    settings = {"bootstrap_servers": ["127.0.0.1:1", "127.0.0.1:2"], "bootstrap_timeout_ms": 500}
    with pytest.raises(TransportError) as refused:
        build_client(
            kafka_python().KafkaProducer, settings, "transports.bus.producer", settings, "bus"
        )
    assert str(refused.value).startswith("bus cannot reach Kafka at 127.0.0.1:1, 127.0.0.1:2: ")
