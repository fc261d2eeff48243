"""The official multi-process demo, rebuilt on the ``multiprocessing_queue`` transport.

python examples/multiprocess_events.py [--trackers 4] [--events 2500]

Several tracker processes track events; one sender process (started by the transport from
multiprocess_events.toml) delivers them with buffered HTTP to a Mixpanel emulator that this
demo starts. At the end: events tracked, delivered (per the sender's reports) and the unique
``$insert_id`` values the emulator received.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from pathlib import Path
from typing import Any

from mixpanel_core import Mixpanel
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess import QueueChannel, worker_client

CONFIG = Path(__file__).resolve().parent / "multiprocess_events.toml"


def tracker(channel: QueueChannel, number: int, events: int) -> None:
    """One tracker process: its own client, producing into the shared queue."""
    with worker_client(channel) as client:
        for i in range(events):
            client.track(f"user-{number}", "Page view", {"page": i % 10, "tracker": number})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trackers", type=int, default=4)
    parser.add_argument("--events", type=int, default=2_500, help="events per tracker")
    args = parser.parse_args()

    with EmulatorProcess() as emulator:
        os.environ["MIXPANEL_DEMO_API_HOST"] = emulator.base_url
        client = Mixpanel.from_config(CONFIG)
        # Building the transport starts the sender; workers get its channel.
        transport: Any = client.pipeline.transport("workers")
        spawn: Any = multiprocessing.get_context("spawn")
        trackers = [
            spawn.Process(target=tracker, args=(transport.channel, n, args.events))
            for n in range(args.trackers)
        ]
        for process in trackers:
            process.start()
        for process in trackers:
            process.join()
        client.close()  # waits for the trackers' producers, drains the queue, stops the sender

        ids = emulator.client.insert_ids("track")  # every event received, repeats included
        tracked = args.trackers * args.events
        counts = transport.supervisor.counts or {}
        print(f"tracked:             {tracked} events in {args.trackers} tracker processes")
        print(f"delivered (sender):  {counts.get('accepted', 0)} accepted {counts}")
        print(f"received (emulator): {len(ids)} events, {len(set(ids))} unique $insert_id")
        problems = received_problems(tracked, ids)
        if problems:
            raise SystemExit("; ".join(problems))


def received_problems(tracked: int, ids: list[str]) -> list[str]:
    """What is wrong with the ``$insert_id`` values received for ``tracked`` events, if anything.

    Mixpanel would count a repeat once, but this demo injects no faults, so nothing is retried:
    an event received twice was sent twice, a defect to see as much as a loss.
    """
    problems = []
    unique = len(set(ids))
    if unique != tracked:
        problems.append(f"lost: {tracked} events tracked, {unique} distinct ones received")
    if len(ids) != unique:
        problems.append(f"duplicated: {len(ids) - unique} event(s) received more than once")
    return problems


if __name__ == "__main__":
    main()
