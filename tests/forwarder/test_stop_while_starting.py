"""A SIGTERM while the forwarder is still starting (here: waiting for a Kafka nobody answers
at, up to ``bootstrap_timeout_ms``) stops it at once, cleanly, saying so (review R41 F2).

Its handlers were installed only once the consumer was built: the signal's default killed
the process (exit -15) with nothing logged, for as long as the build waited."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import free_port

pytestmark = pytest.mark.integration

CONFIG = """\
[mixpanel]
token = "emulator-token"
api_host = "http://127.0.0.1:9"

[transports.bus]
type = "kafka"
bootstrap_servers = "127.0.0.1:1"
topic = "events"

[transports.direct]
type = "http"

[forwarder]
source = "bus"
transport = "direct"
metrics_port = {port}
on_poison = "stop"

[forwarder.consumer]
bootstrap_timeout_ms = 60000
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_starting_exits_0_at_once_saying_so(tmp_path: Path, signum: int) -> None:
    config = tmp_path / "forwarder.toml"
    config.write_text(CONFIG.format(port=free_port()))
    log = tmp_path / "forwarder.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "mixpanel_core.cli", "forward", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        # The metrics endpoint is served before the consumer is built: from then on the
        # build waits for a broker (60 s here).
        deadline = time.monotonic() + 60
        while "metrics at" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the build
        process.send_signal(signum)
        code = process.wait(timeout=30)
    finally:
        process.kill()
        process.wait()
    name = signal.Signals(signum).name
    assert code == 0, log.read_text()
    assert f"{name} received while starting: stopped before reading anything" in log.read_text()
