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


def owner(fallback_and_plugins: str) -> str:
    """The owner's program: ``fallback_and_plugins`` defines ``Fallback`` (given the path of
    the file it writes what it receives to) and ``PLUGINS``. It tracks E0 (which starts the
    sender; the batch lingers in this process), kills the sender, tracks E1 and E2, and
    closes: the batch goes to the fallback."""
    return (
        """
import multiprocessing, os, signal, sys, time
from mixpanel_core import Mixpanel, hookimpl
from mixpanel_core.config import config_from_mapping
from mixpanel_core.errors import QueueFullError
from mixpanel_core.pipeline import Pipeline


class Received:
    def __init__(self, path):
        self.path = path

    def keep(self, message):
        with open(self.path, "a") as file:
            file.write(message.record["event"] + "\\n")

    def flush(self, timeout=None):
        return []

    def close(self, timeout=None):
        return []
"""
        + fallback_and_plugins
        + """

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
    client = Mixpanel("t", config=config, pipeline=Pipeline(PLUGINS, transports, config))
    client.track("u", "E0")
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
    )


INTERRUPTED_AS_OFFERED = owner(
    """
class Fallback(Received):
    interrupted = False

    def send(self, message):
        if not self.interrupted:
            self.interrupted = True
            raise SystemExit(143)  # the signal lands as the first message is offered
        self.keep(message)


PLUGINS = []
"""
)


def test_the_messages_not_yet_offered_reach_the_fallback_at_exit(tmp_path: Path) -> None:
    received = tmp_path / "fallback.txt"

    finished = run_python(INTERRUPTED_AS_OFFERED, str(received))

    assert finished.returncode == 143, finished.stderr
    assert received.read_text().split() == ["E1", "E2"]
    # The one being offered when the signal came: the fallback may or may not have it.
    said = [line for line in finished.stderr.splitlines() if "interrupted the hand-over" in line]
    assert len(said) == 1, finished.stderr
    assert '"event":"E0"' in said[0]


REPORTED_THEN_INTERRUPTED = owner(
    """
class Fallback(Received):
    full = True

    def send(self, message):
        if self.full:
            self.full = False
            raise QueueFullError("its queue stayed full", waited=True)
        self.keep(message)


class Reports:
    @hookimpl
    def mixpanel_delivered(self, report):
        event = report.message.record["event"]
        print("report", event, report.status.value, flush=True)
        if event == "E2":
            raise SystemExit(143)  # a SIGTERM landing as the last report is made


PLUGINS = [("reports", Reports())]
"""
)


def test_messages_reported_failed_unoffered_are_not_handed_over_again_at_exit(
    tmp_path: Path,
) -> None:
    """The fallback stayed full: the rest of the batch was reported FAILED unoffered, and a
    signal landing then put them back, so the exit close delivered them too (review R35)."""
    received = tmp_path / "fallback.txt"

    finished = run_python(REPORTED_THEN_INTERRUPTED, str(received))

    assert finished.returncode == 143, finished.stderr
    reports = [line.split()[1:] for line in finished.stdout.splitlines()]
    assert reports == [["E0", "failed"], ["E1", "failed"], ["E2", "failed"]]
    assert not received.exists(), received.read_text()
    assert "interrupted the hand-over" not in finished.stderr
