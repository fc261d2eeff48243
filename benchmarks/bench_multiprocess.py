"""Multi-process delivery: the ``multiprocessing_queue`` transport against the official pattern.

The same run for both, against the same emulator (``EmulatorProcess``, its own OS process):
``--producers`` tracker processes each track ``--events`` events, one sender process delivers
them over HTTP, and the clock stops when the last event was delivered (the sender exited).

- official: each tracker's ``Mixpanel`` writes ``(endpoint, json)`` to a ``multiprocessing.Queue``
  through a ``QueueWriteConsumer``; the sender process feeds them to a ``BufferedConsumer``
  (the pattern of the official package's multi-process demo), stopped by one sentinel per
  tracker.
- ours: each tracker's client (``worker_client``) queues through the ``multiprocessing_queue``
  transport, whose sender delivers through ``buffered_http``.

Both must deliver every event exactly once (checked); the figure that matters is the ratio of
events per second, ours / official (target >= 5).

    .venv/bin/python benchmarks/bench_multiprocess.py [--producers 4] [--events 10000]
        [--start-method fork|spawn|forkserver] [--no-reports] [--rounds 5]

The machine is shared and noisy: each round runs the official pattern, then ours, and the
median of the rounds' ratios is the figure.

Trackers and both senders are started with ``--start-method`` (default ``fork``, Linux's).
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import statistics
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from typing import Any

import mixpanel as official

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess import QueueChannel, worker_client

TOKEN = "emulator-token"
PROPERTIES = {"plan": "pro", "price": 9.99, "items": 3, "coupon": None, "source": "email"}


# -- the official pattern -------------------------------------------------------------------


class QueueWriteConsumer:
    """The official demo's consumer: hands each message to the sender process's queue."""

    def __init__(self, queue: Queue[Any]) -> None:
        self.queue = queue

    def send(self, endpoint: str, json_message: str) -> None:
        self.queue.put((endpoint, json_message))


def official_tracker(queue: Queue[Any], events: int, worker: int) -> None:
    client = official.Mixpanel(TOKEN, consumer=QueueWriteConsumer(queue))
    for i in range(events):
        client.track(f"user-{worker}-{i}", "Purchase", PROPERTIES)
    queue.put(None)


def official_sender(queue: Queue[Any], base_url: str, producers: int) -> None:
    consumer = official.BufferedConsumer(events_url=f"{base_url}/track")
    stopped = 0
    while stopped < producers:
        item = queue.get()
        if item is None:
            stopped += 1
            continue
        consumer.send(*item)
    consumer.flush()


def run_official(base_url: str, producers: int, events: int, start_method: str) -> None:
    start: Any = multiprocessing.get_context(start_method)
    queue: Queue[Any] = start.Queue()
    sender = start.Process(target=official_sender, args=(queue, base_url, producers))
    sender.start()
    trackers = [
        start.Process(target=official_tracker, args=(queue, events, w)) for w in range(producers)
    ]
    for tracker in trackers:
        tracker.start()
    for tracker in trackers:
        tracker.join()
    sender.join()


# -- ours -----------------------------------------------------------------------------------


def our_tracker(channel: QueueChannel, events: int, worker: int) -> None:
    client = worker_client(channel)
    for i in range(events):
        client.track(f"user-{worker}-{i}", "Purchase", PROPERTIES)
    client.close()


def run_ours(
    base_url: str, producers: int, events: int, start_method: str, forward: bool = True
) -> None:
    start: Any = multiprocessing.get_context(start_method)
    config = config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": base_url},
            "transports": {
                "workers": {
                    "type": "multiprocessing_queue",
                    "inner": "direct",
                    "start_method": start_method,
                    "forward_reports": forward,
                },
                "direct": {"type": "buffered_http"},
            },
            "routes": [{"transport": "workers"}],
        }
    )
    client = Mixpanel(TOKEN, config=config)
    channel = client.pipeline.transport("workers").channel  # type: ignore[attr-defined]
    trackers = [
        start.Process(target=our_tracker, args=(channel, events, w)) for w in range(producers)
    ]
    for tracker in trackers:
        tracker.start()
    for tracker in trackers:
        tracker.join()
    client.close()


# -- the measurement ------------------------------------------------------------------------


def measure(
    name: str,
    run: Callable[[str, int, int, str], None],
    producers: int,
    events: int,
    start_method: str,
) -> float:
    total = producers * events
    with EmulatorProcess(keep_records=True) as emulator:
        started = time.perf_counter()
        run(emulator.base_url, producers, events, start_method)
        elapsed = time.perf_counter() - started
        ids = emulator.client.insert_ids("track")
    if len(ids) != total or len(set(ids)) != total:
        raise SystemExit(
            f"{name}: expected {total} unique events, got {len(ids)} ({len(set(ids))} unique)"
        )
    rate = total / elapsed
    print(f"{name:>9}: {total} events in {elapsed:6.2f} s = {rate:9.0f} events/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--events", type=int, default=10_000, help="events per producer")
    parser.add_argument("--start-method", default="fork", choices=("fork", "spawn", "forkserver"))
    parser.add_argument(
        "--no-reports",
        action="store_true",
        help="ours without forwarding delivery reports to the owner (the official has none)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="official then ours, this many times; the median ratio is the figure",
    )
    args = parser.parse_args()
    ours = functools.partial(run_ours, forward=not args.no_reports)
    ratios = []
    for _ in range(args.rounds):
        official_rate = measure(
            "official", run_official, args.producers, args.events, args.start_method
        )
        our_rate = measure("ours", ours, args.producers, args.events, args.start_method)
        ratios.append(our_rate / official_rate)
        print(f"    ratio: {ratios[-1]:.2f}x")
    print(
        f"ratio ours/official: median {statistics.median(ratios):.2f}x over {len(ratios)} "
        f"rounds (from {min(ratios):.2f}x to {max(ratios):.2f}x; target >= 5x)"
    )


if __name__ == "__main__":
    main()
