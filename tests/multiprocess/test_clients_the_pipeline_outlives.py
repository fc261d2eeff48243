"""What a transport reaches through its pipeline must still work when the user drops the
client without ``close()``, now that transports report without holding the pipeline.

- The owner of a ``multiprocessing_queue`` dropped without ``close()`` is still closed at exit
  (its sender stopped, its records delivered), not freed with its client: the process used to
  hang at exit joining a sender nobody told to stop.
- Worker clients built per request and dropped still send through the ``fallback`` once the
  sender is gone: it is given to them when they are built, not resolved when needed.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from mixpanel_core.config import Config, config_from_mapping
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess import QueueChannel, worker_client

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
EVENTS = 10


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_an_owner_dropped_without_close_is_closed_at_exit_and_delivers(
    emulator: EmulatorProcess, start_method: str
) -> None:
    program = textwrap.dedent(
        f"""
        from mixpanel_core.client import Mixpanel
        from mixpanel_core.config import config_from_mapping

        def main():
            config = config_from_mapping({{
                "mixpanel": {{"token": "{TOKEN}", "api_host": "{emulator.base_url}"}},
                "transports": {{
                    "default": {{"type": "multiprocessing_queue", "inner": "direct",
                                 "start_method": "{start_method}"}},
                    "direct": {{"type": "buffered_http", "linger": 0.02}},
                }},
            }})
            client = Mixpanel("{TOKEN}", config=config)
            for i in range({EVENTS}):
                client.track("u", "Dropped owner", {{"i": i}})
            # returns without close(): the client is freed here, the process then exits

        if __name__ == "__main__":
            main()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert len(set(emulator.insert_ids("track"))) == EVENTS


def config_with_fallback(base_url: str, tmp_file: str) -> Config:
    return config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": base_url},
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "direct",
                    "fallback": "backup",
                    "linger": 0.05,
                },
                "direct": {"type": "buffered_http", "linger": 0.02},
                "backup": {"type": "buffered_http", "linger": 0.02, "dead_letter_path": tmp_file},
            },
        }
    )


def requests_after_the_sender_died(channel: QueueChannel, requests: int) -> None:
    """A forked worker: a client per request, each dropped without close()."""
    for r in range(requests):
        client = worker_client(channel)
        client.track("u", "Request", {"r": r})
        del client
    time.sleep(1)  # the dropped clients' lingering batches are written meanwhile


def test_per_request_worker_clients_use_the_fallback_once_the_sender_is_gone(
    emulator: EmulatorProcess, tmp_path: Any
) -> None:
    from mixpanel_core.client import Mixpanel

    owner = Mixpanel(TOKEN, config=config_with_fallback(emulator.base_url, str(tmp_path / "d")))
    transport: Any = owner.pipeline.transport("default")
    owner.track("u", "Start", {})  # starts the sender
    emulator.wait_for_records(1, "track", timeout=30)
    transport.supervisor.process.kill()
    transport.supervisor.process.join(10)
    worker = multiprocessing.get_context("fork").Process(
        target=requests_after_the_sender_died, args=(transport.channel, 3)
    )
    worker.start()
    worker.join(30)
    assert worker.exitcode == 0
    owner.close(timeout=5)
    # The worker's fallback delivered every request's event (the sender took the first one).
    requests = [r for r in emulator.records("track") if r["event"] == "Request"]
    assert sorted(r["properties"]["r"] for r in requests) == [0, 1, 2]
