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


def our_client(with_super_properties: bool) -> Callable[[int], None]:
    plugins: dict[str, object] = {"enabled": ["mixpanel_limits"]}
    if with_super_properties:
        plugins = {
            "enabled": ["mixpanel_limits", "super_properties"],
            "super_properties": {"properties": {"app": "checkout"}},
        }
    client = Mixpanel(
        "token", MemoryTransport(discard=True), config=config_from_mapping({"plugins": plugins})
    )

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
    runs = {
        "official mixpanel.Mixpanel.track": official_client(),
        "mixpanel_core: limits + router (default)": our_client(False),
        "mixpanel_core: + super_properties": our_client(True),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run(1000)  # warm up
    # Interleaved rounds, median per client: noise from other processes hits all alike.
    for _ in range(args.rounds):
        for name, run in runs.items():
            times[name].append(per_call_microseconds(run, args.calls))
    medians = {name: statistics.median(values) for name, values in times.items()}
    official_us = medians["official mixpanel.Mixpanel.track"]
    print(f"{'client':<44}{'us/call':>10}{'ratio':>8}")
    for name, value in medians.items():
        print(f"{name:<44}{value:>10.2f}{value / official_us:>8.2f}")
    print("target: ratio <= 0.60 (ours / official)")


if __name__ == "__main__":
    main()
