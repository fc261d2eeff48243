"""A bare ``os.fork()`` child of a ``multiprocessing_queue`` owner exits cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mixpanel_core.emulator import EmulatorProcess

from ..subprocesses import run_python

PROGRAM = """
import multiprocessing.util
import os
import sys

from mixpanel_core import Mixpanel

client = Mixpanel.from_config(sys.argv[1])
client.pipeline.build_all()  # the sender is started here, before the fork
pid = os.fork()
if pid == 0:
    client.track("child", "c")
    client.close(30)
    # Run by multiprocessing at exit after it joins its children: skipped when that raised.
    multiprocessing.util.Finalize(
        None, lambda: print("last finalizer ran", flush=True), exitpriority=-1
    )
    sys.exit(0)  # a normal exit: the atexit handlers run
_, status = os.waitpid(pid, 0)
print("child exit code", os.waitstatus_to_exitcode(status), flush=True)
client.track("parent", "p")
client.close(30)
"""


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess() as running:
        yield running


@pytest.mark.integration
def test_a_forked_child_exits_without_joining_the_parents_sender(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    config = tmp_path / "mixpanel.toml"
    config.write_text(
        f'[mixpanel]\ntoken = "emulator-token"\napi_host = "{emulator.base_url}"\n'
        '[transports.workers]\ntype = "multiprocessing_queue"\ninner = "direct"\n'
        '[transports.direct]\ntype = "buffered_http"\n'
        '[[routes]]\ntransport = "workers"\n'
    )
    finished = run_python(PROGRAM, str(config), timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert "can only join a child process" not in finished.stderr
    assert "Traceback" not in finished.stderr, finished.stderr
    assert finished.stdout.splitlines() == ["last finalizer ran", "child exit code 0"]
    records = emulator.client.wait_for_records(2, "track", timeout=30)
    assert sorted(record["event"] for record in records) == ["c", "p"]
