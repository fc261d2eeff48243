"""Review R70 F3: two kafka transports closed at exit, their broker gone, end within the largest
``exit_timeout`` (plus the short floor a later close always has), not within the sum of them.
Each counts its bound from the start of exit (``exit_time_left``), as the transport contract
says; each waiting its whole ``exit_timeout`` took twice it, and a termination grace period
sized on ``exit_timeout`` (as kafka.md advises) had the process killed during the second
close, its records lost without a report."""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap
import time

import pytest

from mixpanel_core.process_exit import CLOSE_FLOOR

pytestmark = pytest.mark.integration

EXIT_TIMEOUT = 4.0
"""Each transport's: the sum (8 s) and the shared bound with its floor (5 s) are far apart."""

PROGRAM = f"""
import time
from mixpanel_core.kafka.admin import create_topic
from mixpanel_core.kafka.broker import EmbeddedBroker
from mixpanel_core.testing import memory_client
from transports.kafka import KafkaTransport

broker = EmbeddedBroker(stop_by_kill=True).start()
transports = []
for name in ("a", "b"):
    create_topic(broker.bootstrap_servers, name, 1)
    transports.append(KafkaTransport(
        broker.bootstrap_servers,
        name,
        {{"linger_ms": 5, "request_timeout_ms": 120_000, "delivery_timeout_ms": 240_000}},
        exit_timeout={EXIT_TIMEOUT},
        name=name,
        report=lambda r: print(r.transport, r.status.name, flush=True),
    ))
client, memory = memory_client("tok")
for n in range(11):
    client.track("u", "Played", {{"n": n}})
first, *rest = memory.messages
for transport in transports:
    transport.send(first)
    assert transport.flush(30) == []
broker.stop()
for transport in transports:
    for message in rest:
        transport.send(message)
# No flush, no close: the broker is gone and the interpreter exits. CLOCK_MONOTONIC is the
# machine's, so the test reads how long the exit took from here.
print("exiting", time.monotonic(), flush=True)
"""


def test_two_transports_closed_at_exit_share_the_exit_timeout() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROGRAM)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ended = time.monotonic()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    exiting = [line for line in lines if line.startswith("exiting ")]
    assert len(exiting) == 1, done.stdout
    exit_took = ended - float(exiting[0].split()[1])
    reports = collections.Counter(line for line in lines if not line.startswith("exiting "))
    assert reports == {"a ACCEPTED": 1, "b ACCEPTED": 1, "a FAILED": 10, "b FAILED": 10}
    for name in ("a", "b"):
        said = f"transport {name!r}: 10 message(s) not acknowledged by Kafka within the 4s"
        assert said in done.stderr, done.stderr
    # The first close waited out the whole bound; the second had only its floor left.
    assert exit_took >= EXIT_TIMEOUT, exit_took
    # Each waiting its own bound took 2 * EXIT_TIMEOUT (8 s); the margin is for a loaded machine.
    assert exit_took < EXIT_TIMEOUT + CLOSE_FLOOR + 1.5, exit_took
