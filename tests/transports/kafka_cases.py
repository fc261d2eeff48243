"""What the ``kafka`` transport's tests build alike: events to send, and a transport whose
broker is gone after it acknowledged one message (what it sends next is never answered)."""

from __future__ import annotations

from mixpanel_core.delivery import Reporter
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.messages import Message
from mixpanel_core.testing import memory_client
from transports.kafka import KafkaTransport


def events(count: int, tag: str = "user", padding: int = 0) -> list[Message]:
    """``count`` tracked events (``{tag}-{n}``), each with ``padding`` bytes of filler."""
    client, memory = memory_client("tok")
    for n in range(count):
        properties: dict[str, object] = {"n": n}
        if padding:
            properties["pad"] = "x" * padding
        client.track(f"{tag}-{n}", "Signed up", properties)
    return memory.messages


def transport_whose_broker_is_gone(report: Reporter) -> KafkaTransport:
    """A transport that sent one message, acknowledged, to a broker since stopped; its long
    request and delivery timeouts keep what it sends next unacknowledged for the test."""
    with EmbeddedBroker(stop_by_kill=True) as broker:
        create_topic(broker.bootstrap_servers, "doomed", 1)
        transport = KafkaTransport(
            broker.bootstrap_servers,
            "doomed",
            {"request_timeout_ms": 60_000, "delivery_timeout_ms": 120_000},
            report=report,
        )
        transport.send(events(1)[0])
        assert transport.flush(10) == []
    return transport
