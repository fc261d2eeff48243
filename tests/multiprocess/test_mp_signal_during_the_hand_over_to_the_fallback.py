"""A signal's SystemExit landing in ``close()`` while the batch it took is handed to the
fallback (the sender is dead). The batch was only in that call's frame: the exit close found
nothing, and every message of it vanished with no report and no line (review P2: with a real
SIGTERM-like alarm, 1 ms into close, while the fallback was being built). The messages not yet
offered now go back to the batch, and the exit close hands them over.

A real owner process, a real sender process (killed), a real interpreter exit; the fallback
raises SystemExit in its first ``send`` as a signal handler would when the signal lands there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..subprocesses import run_python

pytestmark = pytest.mark.integration

OWNER = """
import multiprocessing, os, signal, sys, time
from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.pipeline import Pipeline


class Fallback:
    def __init__(self, path):
        self.path = path
        self.interrupted = False

    def send(self, message):
        if not self.interrupted:
            self.interrupted = True
            raise SystemExit(143)  # the signal lands as the first message is offered
        with open(self.path, "a") as file:
            file.write(message.record["event"] + "\\n")

    def flush(self, timeout=None):
        return []

    def close(self, timeout=None):
        return []


if __name__ == "__main__":
    config = config_from_mapping({
        "mixpanel": {"token": "t", "api_host": "http://127.0.0.1:9"},
        "transports": {
            "default": {"type": "multiprocessing_queue", "inner": "direct", "fallback": "fb",
                  "linger": 60, "start_method": "fork"},
            "direct": {"type": "memory"},
            "fb": {"type": "memory"},
        },
    })
    transports = {**config.transports, "fb": Fallback(sys.argv[1])}
    client = Mixpanel("t", config=config, pipeline=Pipeline([], transports, config))
    client.track("u", "E0")  # starts the sender; the batch lingers in this process
    channel = client.pipeline.transport("default").channel
    while not channel.sender_pid.value:  # killed before it says it runs, it counts as starting
        time.sleep(0.01)
    for sender in multiprocessing.active_children():
        os.kill(sender.pid, signal.SIGKILL)
        sender.join()
    client.track("u", "E1")
    client.track("u", "E2")
    client.close(timeout=5)
"""


def test_the_messages_not_yet_offered_reach_the_fallback_at_exit(tmp_path: Path) -> None:
    received = tmp_path / "fallback.txt"

    finished = run_python(OWNER, str(received))

    assert finished.returncode == 143, finished.stderr
    assert received.read_text().split() == ["E1", "E2"]
    # The one being offered when the signal came: the fallback may or may not have it.
    said = [line for line in finished.stderr.splitlines() if "interrupted the hand-over" in line]
    assert len(said) == 1, finished.stderr
    assert '"event":"E0"' in said[0]
