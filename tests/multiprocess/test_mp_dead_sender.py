"""A sender killed mid-run is noticed: producers fail or fall back in bounded time, no hang."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

import pytest
from mp_workers import config_for, observed_client, track_and_tell, track_until_failure

from mixpanel_core.config import config_from_mapping
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Event
from mixpanel_core.multiprocess.worker import ProducerTransport
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.transport import TransportContext

pytestmark = pytest.mark.integration

# Small queue, long block timeout: a producer that notices the death only by timing out
# would take 60 s; noticing it through the liveness check takes about check_interval.
SMALL_QUEUE = {"max_queue_messages": 1_000, "batch_size": 100, "block_timeout": 60.0}
BOUND = 15.0
"""Seconds within which every worker must have finished after the kill."""


def kill_sender_once_delivering(emulator: EmulatorProcess, transport: Any) -> None:
    emulator.wait_for_records(1, "track", timeout=30)
    process = transport.supervisor.process
    os.kill(process.pid, signal.SIGKILL)


def start_workers(target: Any, args: list[tuple[Any, ...]]) -> list[Any]:
    context: Any = multiprocessing.get_context("fork")
    workers = [context.Process(target=target, args=a) for a in args]
    for worker in workers:
        worker.start()
    return workers


def join_within(workers: list[Any], bound: float) -> None:
    deadline = time.monotonic() + bound
    for worker in workers:
        worker.join(max(deadline - time.monotonic(), 0))
    stuck = [w.pid for w in workers if w.is_alive()]
    for worker in workers:
        if worker.is_alive():
            worker.kill()
    assert not stuck, f"workers {stuck} were still running {bound}s after the sender died"


def test_without_fallback_producers_get_a_transport_error_naming_the_dead_sender(
    emulator: EmulatorProcess,
) -> None:
    client, _ = observed_client(config_for(emulator.base_url, **SMALL_QUEUE))
    transport: Any = client.pipeline.transport("default")
    results: Any = multiprocessing.get_context("fork").Queue()
    workers = start_workers(
        track_until_failure, [(transport.channel, w, results) for w in range(2)]
    )

    kill_sender_once_delivering(emulator, transport)
    join_within(workers, BOUND)

    outcomes = [results.get(timeout=5) for _ in workers]
    for outcome in outcomes:
        assert outcome.startswith("TransportError"), outcome
        assert "sender" in outcome
        assert "is not running" in outcome
    started = time.monotonic()
    client.close(timeout=30)
    # Far under its bound: with the sender dead there is nothing to wait for.
    assert time.monotonic() - started < 10
    assert transport.supervisor.failure is not None
    assert "died" in transport.supervisor.failure


def test_with_a_fallback_producers_carry_on_and_nothing_is_delivered_twice(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, fallback="direct", **SMALL_QUEUE)
    client, _ = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    results: Any = multiprocessing.get_context("fork").Queue()
    events = 20_000
    workers = start_workers(
        track_and_tell, [(transport.channel, w, events, results) for w in range(2)]
    )

    kill_sender_once_delivering(emulator, transport)
    delivered_by_sender = len(emulator.insert_ids("track"))
    join_within(workers, BOUND)
    assert [results.get(timeout=5) for _ in workers] == ["never failed"] * 2
    client.close(timeout=10)

    ids = emulator.insert_ids("track")
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    # The fallback took over: more arrived than the sender delivered before it died (what
    # the dead sender held, and what was still queued, is lost).
    assert len(ids) > delivered_by_sender


def linger_with_a_fallback_that_cannot_be_built(channel: Any, config: Any, results: Any) -> None:
    """A forked worker: a producer whose fallback fails to build lingers a partial batch
    after the sender died."""
    reports: list[DeliveryReport] = []
    pipeline = Pipeline.from_config(config)
    context = TransportContext(
        "default", config.mixpanel, reports.append, pipeline.transport, config
    )
    producer = ProducerTransport(channel, context)
    for i in range(3):  # fewer than a batch: written by the linger thread
        record = {"event": "Tick", "properties": {"token": "t", "distinct_id": "u", "i": i}}
        producer.send(Event(freeze(record, Event.kind)))
    deadline = time.monotonic() + 10
    while len(reports) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    results.put([(r.status.value, r.reason) for r in reports])


def test_a_lingering_batch_whose_fallback_cannot_be_built_is_reported_failed(
    emulator: EmulatorProcess,
) -> None:
    # Before, the linger thread logged the TransportError and the batch vanished unreported.
    config = config_from_mapping(
        {
            "mixpanel": {"token": "emulator-token", "api_host": emulator.base_url},
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "direct",
                    "fallback": "broken",
                    "linger": 0.1,
                },
                "direct": {"type": "buffered_http", "linger": 0.02},
                # Loaded fine; built (when the fallback is first needed) it is refused.
                "broken": {"type": "buffered_http", "when_full": "bogus"},
            },
        }
    )
    client, _ = observed_client(config)
    transport: Any = client.pipeline.transport("default")
    client.track("u", "Tick", {})  # starts the sender
    emulator.wait_for_records(1, "track", timeout=30)
    process = transport.supervisor.process
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    results: Any = multiprocessing.get_context("fork").Queue()
    worker = multiprocessing.get_context("fork").Process(
        target=linger_with_a_fallback_that_cannot_be_built,
        args=(transport.channel, config, results),
    )
    worker.start()
    try:
        reported = results.get(timeout=30)
    finally:
        worker.join(10)
        client.close(timeout=10)
    assert [status for status, _ in reported] == ["failed"] * 3
    assert all("is not running" in reason and "when_full" in reason for _, reason in reported)
