"""What the multiprocess tests run in their worker processes, and how they configure clients.

A module of its own (not a test module) so that ``spawn`` and ``forkserver`` children import
it by name.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from mixpanel_core import hookimpl
from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config, config_from_mapping
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.errors import TransportError
from mixpanel_core.multiprocess import QueueChannel, worker_client
from mixpanel_core.pipeline import Pipeline

TOKEN = "emulator-token"


BUFFERED_DIRECT = {"type": "buffered_http", "linger": 0.02}
SYNCHRONOUS_DIRECT = {"type": "http"}
"""A ``direct`` whose sender waits on each request itself (the emulator's stall holds it)."""


def config_for(base_url: str, direct: Any = BUFFERED_DIRECT, **workers: Any) -> Config:
    """``default``: the multiprocessing_queue transport, whose sender delivers via ``direct``."""
    return config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": base_url},
            "transports": {
                "default": {"type": "multiprocessing_queue", "inner": "direct", **workers},
                "direct": direct,
            },
        }
    )


class ReportCounter:
    """A plugin that counts delivery reports by status and keeps each report's message."""

    def __init__(self) -> None:
        self.by_status: collections.Counter[str] = collections.Counter()
        self.reports: list[DeliveryReport] = []
        self._lock = threading.Lock()

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        with self._lock:
            self.by_status[report.status.value] += 1
            self.reports.append(report)


def observed_client(config: Config) -> tuple[Mixpanel, ReportCounter]:
    """A client whose delivery reports are counted."""
    counter = ReportCounter()
    pipeline = Pipeline([("counter", counter)], config.transports, config)
    return Mixpanel(TOKEN, config=config, pipeline=pipeline), counter


def track_through_channel(channel: QueueChannel, worker: int, events: int) -> None:
    """A spawned worker: its own client on the owner's channel."""
    client = worker_client(channel)
    for i in range(events):
        client.track(f"worker-{worker}", "Tick", {"i": i})
    client.close()


def track_and_update_profiles(channel: QueueChannel, worker: int, events: int) -> None:
    """A worker whose batches mix endpoints: an event each time, a profile update every third."""
    client = worker_client(channel)
    for i in range(events):
        client.track(f"worker-{worker}", "Tick", {"i": i})
        if i % 3 == 0:
            client.people_set(f"worker-{worker}", {"i": i})
    client.close()


def track_with_inherited_client(client: Mixpanel, worker: int, events: int) -> None:
    """A forked worker: the client it inherited from the parent."""
    for i in range(events):
        client.track(f"worker-{worker}", "Tick", {"i": i})
    client.close()


def track_until_failure(channel: QueueChannel, worker: int, results: Any) -> None:
    """Track until the transport refuses (or ``fallback`` takes over); record what happened."""
    client = worker_client(channel)
    outcome = "never failed"
    try:
        for i in range(1_000_000):
            client.track(f"worker-{worker}", "Tick", {"i": i})
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    finally:
        client.close(timeout=5)
        results.put(outcome)


def track_and_tell(channel: QueueChannel, worker: int, events: int, results: Any) -> None:
    """Track ``events`` events; record whether any call raised."""
    client = worker_client(channel)
    outcome = "never failed"
    try:
        for i in range(events):
            client.track(f"worker-{worker}", "Tick", {"i": i})
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    finally:
        client.close(timeout=10)
        results.put(outcome)


def write_one_big_frame(channel: QueueChannel, events: int, pad: int) -> None:
    """Track one batch of big events (one frame larger than the pipe), then wait to be killed."""
    client = worker_client(channel)
    for i in range(events):
        client.track("victim", "Big", {"i": i, "pad": "x" * pad})
    time.sleep(600)


def track_until_stopped(channel: QueueChannel, stop: Any) -> None:
    """A spawned worker that keeps tracking (one event every 5 ms) until ``stop`` is set, and
    only then closes: a worker still busy when the owner closes."""
    client = worker_client(channel)
    n = 0
    while not stop.is_set():
        try:
            client.track(f"slow-{n}", "E", {"n": n})
        except TransportError:
            break  # the sender is gone and no fallback is configured: as documented
        n += 1
        time.sleep(0.005)
    client.close(10)


def write_one_frame_and_exit(channel: QueueChannel, events: int, pad: int) -> None:
    """Track one batch (one frame, written whole before ``track`` returns), close, and exit."""
    client = worker_client(channel)
    for i in range(events):
        client.track("finished", "Big", {"i": i, "pad": "x" * pad})
    client.close(timeout=10)
