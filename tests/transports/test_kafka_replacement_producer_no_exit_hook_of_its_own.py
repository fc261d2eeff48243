"""A producer built to replace a broken one has kafka-python's own exit hook removed too, as the
first has: at exit, with the broker gone, the transport's bounded close is the one clean-up. The
replacement is built after the transport registered its exit close, so its own hook would run
first: a one-second flush that raises ``KafkaTimeoutError`` and reports nothing. Against the
real broker, in a process of its own."""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

PROGRAM = """
import sys, time
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.testing import memory_client
from transports.kafka import KafkaTransport

broker = EmbeddedBroker(stop_by_kill=True).start()
create_topic(broker.bootstrap_servers, "exit", 1)
transport = KafkaTransport(
    broker.bootstrap_servers,
    "exit",
    {"linger_ms": 5, "request_timeout_ms": 120_000, "delivery_timeout_ms": 240_000},
    exit_timeout=0.5,
    report=lambda r: print(r.status.name, flush=True),
)
client, memory = memory_client("tok")
for n in range(12):
    client.track("u", "Played", {"n": n})
warm, second, *rest = memory.messages
transport.send(warm)
assert transport.flush(30) == []
first = transport._producer
first._transaction_manager.transition_to_fatal_error(
    kafka_python().errors.KafkaError("fatal for the test")
)
deadline = time.monotonic() + 20  # the watchdog looks once a second
while transport._producer is first:
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.05)
transport.send(second)
assert transport.flush(30) == []
broker.stop()
for message in rest:
    transport.send(message)
# No flush, no close: the broker is gone and the interpreter exits.
"""


def test_at_exit_a_replacement_producer_leaves_the_clean_up_to_the_transport() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert collections.Counter(done.stdout.split()) == {"ACCEPTED": 2, "FAILED": 10}
    assert "10 message(s) not acknowledged by Kafka within the 0.5s exit_timeout" in done.stderr
    assert "KafkaTimeoutError" not in done.stderr
    assert "Exception ignored" not in done.stderr
