"""Per-call cost of ``track()`` through the whole pipeline against the official client's.

Both run in this process, interleaved in rounds, each to a sink that discards: ours through
validation (``mixpanel_limits``), enrichment (``super_properties`` with one property) and routing
(``router``) to a discarding ``memory`` transport; the official ``Mixpanel.track`` to a consumer
whose ``send`` does nothing. The figure that matters is the ratio, ours / official (target <= 0.6).

    .venv/bin/python benchmarks/bench_track.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import mixpanel as official

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.testing import MemoryTransport

PROPERTIES = {"plan": "pro", "price": 9.99, "items": 3, "coupon": None, "source": "email"}


class DiscardingConsumer:
    def send(self, endpoint: str, json_message: str) -> None:
        pass


def official_client() -> Callable[[int], None]:
    client = official.Mixpanel("token", consumer=DiscardingConsumer())

    def run(calls: int) -> None:
        track = client.track
        for _ in range(calls):
            track("user-42", "Purchase", PROPERTIES)

    return run


def our_client() -> Callable[[int], None]:
    config = config_from_mapping(
        {
            "plugins": {
                "enabled": ["mixpanel_limits", "super_properties"],
                "super_properties": {"properties": {"app": "checkout"}},
            }
        }
    )
    client = Mixpanel("token", MemoryTransport(discard=True), config=config)

    def run(calls: int) -> None:
        track = client.track
        for _ in range(calls):
            track("user-42", "Purchase", PROPERTIES)

    return run


def per_call_microseconds(run: Callable[[int], None], calls: int) -> float:
    start = time.perf_counter()
    run(calls)
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    ours, theirs = our_client(), official_client()
    ours(1000), theirs(1000)  # warm up
    our_times, their_times = [], []
    for _ in range(args.rounds):
        their_times.append(per_call_microseconds(theirs, args.calls))
        our_times.append(per_call_microseconds(ours, args.calls))
    mine, official_us = statistics.median(our_times), statistics.median(their_times)
    print(f"{'client':<40}{'us/call (median)':>18}")
    print(f"{'official mixpanel.Mixpanel.track':<40}{official_us:>18.2f}")
    print(f"{'mixpanel_core Mixpanel.track (pipeline)':<40}{mine:>18.2f}")
    print(f"ratio ours/official: {mine / official_us:.2f}  (target <= 0.60)")


if __name__ == "__main__":
    main()
