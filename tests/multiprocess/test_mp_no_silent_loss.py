"""Nothing is lost without a word: records the sender cannot deliver are reported, returned,
or raised about, whatever the owner's close, flush or a worker's close times out on."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from typing import Any

import pytest
from mp_workers import TOKEN, config_for, observed_client

from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.errors import QueueFullError, TransportError
from mixpanel_core.multiprocess import QueueChannel, worker_client
from mixpanel_core.testing import wait_until_sender_took

pytestmark = pytest.mark.integration


def test_owner_close_while_mixpanel_is_down_reports_every_record_failed(
    emulator: EmulatorProcess,
) -> None:
    client, counter = observed_client(
        config_for(emulator.base_url, batch_size=100, shutdown_timeout=5.0)
    )
    emulator.client.fail_next(1_000_000, 503)
    for i in range(500):
        client.track("u", "Down", {"i": i})
    started = time.monotonic()
    left = client.close()
    took = time.monotonic() - started
    assert took < 5.0 + 2.0, f"close took {took:.1f}s"
    # Before the fix the owner terminated the sender first: no report at all.
    assert counter.by_status == {"failed": 500}, dict(counter.by_status)
    assert list(left) == []  # held in the sender: reported FAILED there, not returned


def test_owner_flush_raises_when_the_sender_died_holding_records(
    emulator: EmulatorProcess,
) -> None:
    client, _ = observed_client(config_for(emulator.base_url, batch_size=100))
    transport = client.pipeline.transport("default")
    emulator.client.stall()
    for i in range(300):
        client.track("u", "Held", {"i": i})
    transport._producer.flush()  # queue the partial batch now
    wait_until_sender_took(transport.channel, 300)
    os.kill(transport.supervisor.process.pid, signal.SIGKILL)
    emulator.client.release()
    with pytest.raises(TransportError, match="300 records it took have no delivery report"):
        client.flush(timeout=10)
    client.close(timeout=10)


def test_owner_flush_raises_when_the_sender_does_not_answer_in_time(
    emulator: EmulatorProcess,
) -> None:
    """A sender that cannot answer by the deadline (here: paused; a slow Mixpanel no longer
    does it, as the sender then answers how many records it did not deliver)."""
    client, counter = observed_client(config_for(emulator.base_url, batch_size=100))
    sender = client.pipeline.transport("default").supervisor.process
    os.kill(sender.pid, signal.SIGSTOP)
    try:
        for i in range(200):
            client.track("u", "Slow", {"i": i})
        with pytest.raises(TransportError, match=r"did not confirm the flush within 1\.0s"):
            client.flush(timeout=1.0)
    finally:
        os.kill(sender.pid, signal.SIGCONT)
    client.close(timeout=20)
    assert counter.by_status["accepted"] == 200, dict(counter.by_status)


def close_with_a_short_timeout(channel: QueueChannel, results: Any) -> None:
    """A spawned worker that fills the pipe while the sender does not read, then closes with
    a partial batch and ``timeout=1``: (tracked, refused by send, returned by close, took)."""
    client = worker_client(channel)
    tracked = refused = 0
    while tracked < 50_000:
        tracked += 1
        try:
            client.track("w", "Stuck", {"i": tracked, "pad": "x" * 1000})
        except QueueFullError:
            refused = 100  # the whole batch, reported FAILED here
            break
    for i in range(PARTIAL):
        client.track("w", "Stuck", {"i": -i, "pad": "x" * 1000})
    started = time.monotonic()
    left = client.close(timeout=1.0)
    results.put((tracked + PARTIAL, refused, len(left), time.monotonic() - started))


PARTIAL = 40


def test_a_worker_close_that_times_out_returns_the_batch_it_could_not_write(
    emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": emulator.base_url},
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "direct",
                    "batch_size": 100,
                    "max_queue_messages": 100,
                    "block_timeout": 1.0,
                },
                # A small inner queue: the sender blocks on it, and stops reading frames.
                "direct": {"type": "buffered_http", "max_queue_messages": 100, "block_timeout": 30},
            },
        }
    )
    client, counter = observed_client(config)
    transport = client.pipeline.transport("default")
    emulator.client.stall()  # the sender stops reading once its inner transport is full
    context: Any = multiprocessing.get_context("spawn")
    results = context.Queue()
    worker = context.Process(target=close_with_a_short_timeout, args=(transport.channel, results))
    worker.start()
    tracked, refused, left, took = results.get(timeout=60)
    worker.join(30)
    assert refused == 100, "the pipe never filled"
    assert left == PARTIAL, "the worker's close() claimed its last batch was handed over"
    assert took < 1.0 + 2.0, f"close(timeout=1) took {took:.1f}s"
    emulator.client.release()
    with caplog.at_level(logging.ERROR):
        client.close(timeout=10)
    delivered = len(set(emulator.client.insert_ids("track")))
    reported = sum(n for status, n in counter.by_status.items() if status != "accepted")
    unaccounted = transport.supervisor.unaccounted or 0
    # Every record is returned by the worker, refused by send, delivered, reported, or
    # counted by the owner.
    assert left + refused + delivered + reported + unaccounted >= tracked
