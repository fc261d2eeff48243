"""The close at interpreter exit waits ``exit_timeout``, not ``close_timeout``: with the broker
gone and messages unacknowledged, a process whose ``close_timeout`` is long still ends about
``exit_timeout`` after its last statement, its messages reported FAILED. (Waiting
``close_timeout`` there held every exit of a program whose Kafka was down for that long.)"""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.integration

CLOSE_TIMEOUT = 90.0
"""Far beyond the bound below: an exit close that took it would be plain."""

PROGRAM = f"""
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.testing import memory_client
from transports.kafka import KafkaTransport

broker = EmbeddedBroker(stop_by_kill=True).start()
create_topic(broker.bootstrap_servers, "exit", 1)
transport = KafkaTransport(
    broker.bootstrap_servers,
    "exit",
    {{"linger_ms": 5, "request_timeout_ms": 120_000, "delivery_timeout_ms": 240_000}},
    close_timeout={CLOSE_TIMEOUT},
    exit_timeout=0.5,
    report=lambda r: print(r.status.name, flush=True),
)
client, memory = memory_client("tok")
for n in range(20):
    client.track("u", "Played", {{"n": n}})
first, *rest = memory.messages
transport.send(first)
assert transport.flush(30) == []
broker.stop()
for message in rest:
    transport.send(message)
# No flush, no close: the broker is gone and the interpreter exits.
"""


def test_the_exit_close_gives_up_after_exit_timeout_not_close_timeout() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM)],
        capture_output=True,
        text=True,
        timeout=CLOSE_TIMEOUT + 60,
        check=False,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert collections.Counter(done.stdout.split()) == {"ACCEPTED": 1, "FAILED": 19}
    assert "19 message(s) not acknowledged by Kafka within the 0.5s exit_timeout" in done.stderr
    # Starting the broker and the interpreter takes a few seconds on a loaded machine.
    assert seconds < 30, seconds
