"""The kafka transports' watchdog thread ends once every kafka transport is closed, and a new
transport starts it again; against the real broker, in a process of its own (the test run's
other transports would keep it alive). It woke once a second for the life of the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    from mixpanel_core import Mixpanel
    from transports.kafka import KafkaTransport

    def watchdogs():
        return [t for t in threading.enumerate() if t.name == "mixpanel-core-kafka-watchdog"]

    def gone_within(seconds):
        until = time.monotonic() + seconds
        while watchdogs() and time.monotonic() < until:
            time.sleep(0.05)
        return not watchdogs()

    bootstrap, topic = sys.argv[1:3]
    for round in ("first", "second"):
        mp = Mixpanel("emulator-token", KafkaTransport(bootstrap, topic, name=round))
        mp.track("u-1", "E")
        assert mp.flush(30) == []
        print(round, "watching:", len(watchdogs()))
        assert mp.close(30) == []
        print(round, "ended after close:", gone_within(3.0))
    """
)


def test_the_watchdog_thread_ends_with_the_last_transport(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, kafka_bootstrap, kafka_topic],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "first watching: 1",
        "first ended after close: True",
        "second watching: 1",
        "second ended after close: True",
    ], done.stdout + done.stderr
