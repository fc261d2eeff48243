"""A child forked while another thread of the parent's builds a transport (on first use)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.testing import install_distribution

from ..subprocesses import run_python

SLOW = '''
import os
import threading

from mixpanel_core.testing import MemoryTransport

building = threading.Event()
finish = threading.Event()
BUILDER = os.getpid()


class SlowTransport:
    """Built slowly in the process that loaded it (a broker's handshake), at once elsewhere."""

    @classmethod
    def from_config(cls, options, context):
        if os.getpid() == BUILDER:
            building.set()
            finish.wait(30)
        return MemoryTransport()
'''

PROGRAM = """
import os
import sys
import threading

sys.path.insert(0, sys.argv[1])

from mixpanel_core import Mixpanel

client = Mixpanel.from_config(sys.argv[2])
# An app-start event on a thread: it builds the transport, on its first use.
starter = threading.Thread(target=client.track, args=("parent", "startup"))
starter.start()
import slow_transport

assert slow_transport.building.wait(30)
pid = os.fork()
if pid == 0:
    outcome = []

    def request():
        try:
            client.track("child", "request")
            sent = client.pipeline.transport("slow").records()
            outcome.append("ok" if len(sent) == 1 else f"sent {sent}")
        except Exception as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    if sys.argv[3] == "main":  # the worker's main thread serves requests
        watchdog = threading.Timer(10, lambda: os._exit(3))
        watchdog.daemon = True
        watchdog.start()
        request()
    else:
        worker = threading.Thread(target=request, daemon=True)
        worker.start()
        worker.join(10)
    print(outcome or "track() did not return in 10 s", flush=True)
    os._exit(0 if outcome == ["ok"] else 3)
slow_transport.finish.set()
starter.join()
_, status = os.waitpid(pid, 0)
assert len(client.pipeline.transport("slow").records()) == 1  # the parent's own
client.close()
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("thread", ["main", "new"])
def test_the_child_builds_its_own_transport_and_sends(tmp_path: Path, thread: str) -> None:
    install_distribution(
        tmp_path,
        "slow-transport",
        {"mixpanel_core.transports": {"slow": "slow_transport:SlowTransport"}},
        {"slow_transport": SLOW},
    )
    config = tmp_path / "mixpanel.toml"
    config.write_text('[mixpanel]\ntoken = "t"\n[transports.slow]\ntype = "slow"\n')
    finished = run_python(PROGRAM, str(tmp_path), str(config), thread, timeout=90)
    assert finished.returncode == 0, finished.stdout + finished.stderr


FORKING = '''
import os

from mixpanel_core.testing import MemoryTransport

PARENT = os.getpid()
children = []


class ForkingTransport:
    """Forks in from_config (a transport starting a helper process the way os.fork() does)."""

    @classmethod
    def from_config(cls, options, context):
        pid = os.fork()
        if pid:
            children.append(pid)
        return MemoryTransport()
'''

FORKING_PROGRAM = """
import os
import sys

sys.path.insert(0, sys.argv[1])

from mixpanel_core import Mixpanel

client = Mixpanel.from_config(sys.argv[2])
try:
    client.track("someone", "first")  # builds the transport, which forks in from_config
    sent = len(client.pipeline.transport("forking").records())
    outcome = "ok" if sent == 1 else f"sent {sent}"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {exc}"
import forking_transport

if os.getpid() != forking_transport.PARENT:
    print("child:", outcome, flush=True)
    os._exit(0 if outcome == "ok" else 3)
[pid] = forking_transport.children
_, status = os.waitpid(pid, 0)
print("parent:", outcome, flush=True)
client.close()
sys.exit(os.waitstatus_to_exitcode(status) or (0 if outcome == "ok" else 4))
"""


def test_a_transport_that_forks_while_it_is_built_finishes_its_build_in_the_child(
    tmp_path: Path,
) -> None:
    # The child's only thread holds the build lock: the reset must leave it to be released
    # (a fresh lock would make the build's own release raise RuntimeError in the child).
    install_distribution(
        tmp_path,
        "forking-transport",
        {"mixpanel_core.transports": {"forking": "forking_transport:ForkingTransport"}},
        {"forking_transport": FORKING},
    )
    config = tmp_path / "mixpanel.toml"
    config.write_text('[mixpanel]\ntoken = "t"\n[transports.forking]\ntype = "forking"\n')
    finished = run_python(FORKING_PROGRAM, str(tmp_path), str(config), timeout=90)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert sorted(finished.stdout.split("\n")[:2]) == ["child: ok", "parent: ok"]
