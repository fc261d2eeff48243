"""The documented way to stop on SIGTERM: a handler that calls ``sys.exit()`` delivers all.

SIGTERM with no handler (the default stop of Kubernetes, Docker, systemd) kills the process:
no exit close runs, and what is queued is lost. The remedy the docs give is a handler that
raises ``SystemExit``: the interrupted ``send()`` lets go of the transport as the exception
leaves it, and the exit close then delivers everything queued. Here the signal comes while
the program sends as fast as it can, so it often lands inside a ``send()``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration

PROGRAM = """
import atexit, signal, sys, time
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

base_url, tag, dead = sys.argv[1:]
sent = 0
# Registered before the transport's first send, so it runs after the transport's exit close.
atexit.register(lambda: print("sent", sent, flush=True))
# The documented remedy: the exit close runs once the interrupted call has let go.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
transport = BufferedHttpTransport(
    MixpanelSettings(api_host=base_url),
    BufferedHttpOptions(linger=0.05, exit_timeout=60.0, dead_letter_path=dead),
)
print("ready", flush=True)
while sent < 100_000:
    record = {"event": "e", "properties": {"token": "emulator-token", "distinct_id": "u",
        "time": time.time(), "$insert_id": f"{tag}-{sent:08d}"}}
    transport.send(Event(freeze(record, "event")))
    sent += 1
    if sent % 200 == 0:
        time.sleep(0.001)  # paced: some thousands of events before the signal, not millions
time.sleep(600)
"""


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.4])
def test_a_sigterm_handler_that_calls_sys_exit_delivers_everything_sent(
    mixpanel_emulator: Emulator, tmp_path: Path, delay: float
) -> None:
    tag = f"term{int(delay * 100)}"
    dead = tmp_path / "dead.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, mixpanel_emulator.base_url, tag, str(dead)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        time.sleep(delay)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    sent = int(out.split("sent")[1])
    ids = sorted(i for i in mixpanel_emulator.client.insert_ids("track") if i.startswith(tag))
    # The send the signal interrupted may have queued its event before SystemExit left it.
    assert len(ids) in (sent, sent + 1), err
    assert ids == [f"{tag}-{n:08d}" for n in range(len(ids))]  # no gap, no duplicate
    assert not dead.exists()
