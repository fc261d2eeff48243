"""Real processes, the real emulator over sockets: everything arrives exactly once."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

import pytest
from mp_workers import (
    TOKEN,
    config_for,
    observed_client,
    track_and_update_profiles,
    track_through_channel,
    track_with_inherited_client,
)

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with EmulatorProcess() as emulator:
        yield emulator


@pytest.fixture
def fresh(emulator: EmulatorProcess) -> EmulatorProcess:
    emulator.reset()
    return emulator


def run_workers(start_method: str, target: Any, args: list[tuple[Any, ...]]) -> None:
    context: Any = multiprocessing.get_context(start_method)
    workers = [context.Process(target=target, args=a) for a in args]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0, f"a worker exited with {worker.exitcode}"


def test_four_producers_of_10000_events_reach_the_emulator_each_insert_id_exactly_once(
    fresh: EmulatorProcess,
) -> None:
    client, counter = observed_client(config_for(fresh.base_url))
    transport: Any = client.pipeline.transport("default")
    run_workers("spawn", track_through_channel, [(transport.channel, w, 10_000) for w in range(4)])
    client.close()

    ids = fresh.client.insert_ids("track")
    assert len(ids) == 40_000
    assert len(set(ids)) == 40_000
    assert transport.supervisor.counts == {"accepted": 40_000}
    # The sender's reports reached the owner's hook, each with its message.
    assert counter.by_status == {"accepted": 40_000}
    assert {r.message.insert_id for r in counter.reports if r.message} == set(ids)


def test_a_client_made_before_fork_works_in_the_children(fresh: EmulatorProcess) -> None:
    """The inherited transport becomes a producer in each child; one sender serves all."""
    client, counter = observed_client(config_for(fresh.base_url))
    client.pipeline.build_all()  # the sender starts here, before the fork
    client.track("parent", "Tick", {"i": -1})
    run_workers("fork", track_with_inherited_client, [(client, w, 1_000) for w in range(2)])

    # A bare os.fork() child (a pre-fork server's worker) too.
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            track_with_inherited_client(client, 9, 1_000)
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.close()

    ids = fresh.client.insert_ids("track")
    assert len(ids) == 3_001
    assert len(set(ids)) == 3_001
    assert counter.by_status == {"accepted": 3_001}


@pytest.mark.parametrize("start_method", ["spawn", "fork", "forkserver"])
def test_every_start_method_works_for_the_sender_and_the_workers(
    fresh: EmulatorProcess, start_method: str
) -> None:
    client, counter = observed_client(config_for(fresh.base_url, start_method=start_method))
    transport: Any = client.pipeline.transport("default")
    started_as = {"spawn": "SpawnProcess", "fork": "ForkProcess", "forkserver": "ForkServerProcess"}
    assert type(transport.supervisor.process).__name__ == started_as[start_method]
    run_workers(
        start_method, track_through_channel, [(transport.channel, w, 500) for w in range(2)]
    )
    client.close()

    ids = fresh.client.insert_ids("track")
    assert sorted(ids) == sorted(set(ids))
    assert len(ids) == 1_000
    assert counter.by_status == {"accepted": 1_000}


def test_without_an_observer_the_sender_still_counts_every_record(
    fresh: EmulatorProcess,
) -> None:
    """Unobserved, accepted records get no report at all: the sender counts them as taken
    minus the others. A rejected request shows up as such, and the two add up."""
    config = config_for(fresh.base_url, start_method="fork")
    client = Mixpanel(TOKEN, config=config)
    transport: Any = client.pipeline.transport("default")
    fresh.client.fail_next(1, 400, endpoints=["track"])
    run_workers("fork", track_through_channel, [(transport.channel, w, 2_000) for w in range(2)])
    client.close()

    delivered = len(fresh.client.insert_ids("track"))
    counts = transport.supervisor.counts
    assert counts is not None
    assert counts["rejected"] > 0
    assert counts == {"accepted": delivered, "rejected": 4_000 - delivered}


def test_events_and_profile_updates_from_one_worker_each_reach_their_endpoint(
    fresh: EmulatorProcess,
) -> None:
    """A worker's frame mixes endpoints; the sender hands each run of one endpoint to
    buffered_http as it is, and every record lands where it belongs, in order."""
    config = config_for(fresh.base_url, start_method="fork", batch_size=50)
    client = Mixpanel(TOKEN, config=config)
    transport: Any = client.pipeline.transport("default")
    run_workers("fork", track_and_update_profiles, [(transport.channel, 0, 300)])
    client.close()

    events = fresh.client.records("track")
    profiles = fresh.client.records("engage")
    assert [e["properties"]["i"] for e in events] == list(range(300))
    assert [p["$set"]["i"] for p in profiles] == list(range(0, 300, 3))
    assert transport.supervisor.counts == {"accepted": 400}


def test_a_relayed_failure_carries_the_retry_after_mixpanel_asked_for(
    fresh: EmulatorProcess,
) -> None:
    # Relayed without it before: an observer could not wait as long as Mixpanel asked.
    config = config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": fresh.base_url},
            "transports": {
                "default": {"type": "multiprocessing_queue", "inner": "direct"},
                # A Retry-After beyond the budget: given up at once, with the server's figure.
                "direct": {"type": "buffered_http", "linger": 0.02, "retry_budget": 1.0},
            },
        }
    )
    client, counter = observed_client(config)
    fresh.client.fail_next(1, 429, endpoints=["track"], retry_after=30)
    client.track("someone", "Tick")
    client.close()

    [report] = counter.reports
    assert (report.status.value, report.http_status, report.retry_after) == ("failed", 429, 30.0)
