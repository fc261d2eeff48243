"""A ``send()`` waiting for room under ``max_unacknowledged`` (the broker gone) ends as soon as
``close()`` begins, raising that the transport is closed: not when close() gives up on what
the broker never acknowledged (which makes room), nor after ``max_block_ms``."""

from __future__ import annotations

import threading
import time

from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.testing import memory_client
from transports.kafka import KafkaTransport

MAX_BLOCK_MS = 20_000
CLOSE_TIMEOUT = 6.0


def test_a_send_waiting_for_room_raises_once_close_begins() -> None:
    client, memory = memory_client("tok")
    for n in range(4):
        client.track("u", "E", {"n": n})
    warm, *held, waiting = memory.messages
    reports: list[DeliveryReport] = []
    with EmbeddedBroker(stop_by_kill=True) as broker:
        create_topic(broker.bootstrap_servers, "held", 1)
        transport = KafkaTransport(
            broker.bootstrap_servers,
            "held",
            {"max_block_ms": MAX_BLOCK_MS},
            max_unacknowledged=2,
            report=reports.append,
        )
        transport.send(warm)
        assert transport.flush(30) == []
    for message in held:
        transport.send(message)  # under the bound: taken at once, broker or not
    outcome: list[tuple[BaseException | None, float]] = []

    def send_waiting() -> None:
        try:
            transport.send(waiting)
            outcome.append((None, time.monotonic()))
        except TransportError as exc:
            outcome.append((exc, time.monotonic()))

    sender = threading.Thread(target=send_waiting, daemon=True)
    sender.start()
    time.sleep(0.5)  # it waits for room (polling); a longer nap changes nothing
    assert sender.is_alive(), outcome
    started = time.monotonic()
    # close() waits CLOSE_TIMEOUT for acknowledgements that never come, then gives up.
    assert transport.close(CLOSE_TIMEOUT) == held
    sender.join(10)
    assert not sender.is_alive(), "send() still waits after close() returned"
    [(error, ended)] = outcome
    assert "is closed" in str(error)
    assert ended - started < CLOSE_TIMEOUT / 2, f"send() ended {ended - started:.1f}s into close()"
