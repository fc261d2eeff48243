"""A worker producer's registration is released once, even when two closes race: here a thread's
``close()`` and the exit hook of the worker's exit, which closes the same producer.

Released twice, the second release frees the ledger slot a second time, and by then another
worker may hold it (a producer opening takes the first free slot). That worker is then not
counted open: the owner's ``close()`` stops the sender without waiting for it, and its records,
written after the sender exited, are never delivered (reported FAILED in that worker and handed
back by its ``close()``).

The interleaving is forced: worker A's exit hook is held inside its close of the producer
while A's thread closes it (the first release), worker B opens in the slot that frees, and
only then does the exit hook go on to its own release.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from typing import Any

import pytest
from mp_workers import config_for, observed_client
from owner_close import close_the_owner_letting_the_worker_go

from mixpanel_core.emulator import EmulatorProcess
from mixpanel_core.multiprocess import QueueChannel, worker_client

pytestmark = pytest.mark.integration

HELD = 5
"""Records worker B holds in its batch (the long linger keeps them there) until told to close."""


def close_while_the_exit_hook_closes(channel: QueueChannel, released: Any, go_on: Any) -> None:
    """Worker A: one record, then its producer closed by a thread while its exit hook (held
    until ``go_on``) closes it too; ``released`` once the thread's close has returned."""
    client = worker_client(channel)
    client.track("a", "Tick", {"$insert_id": "a"})
    transport: Any = client.pipeline.transport("default")
    producer = transport._producer
    exit_hook = transport._registration.cancel_exit_close.__self__
    close_for_real = producer.close
    exit_hook_closing = threading.Event()

    def close_held(timeout: float | None = None, **how: Any) -> Any:
        exit_hook_closing.set()
        go_on.wait(60)
        return close_for_real(timeout, **how)

    producer.close = close_held
    exiting = threading.Thread(target=exit_hook.run)
    exiting.start()
    exit_hook_closing.wait(60)
    del producer.close  # the thread's own close runs for real
    transport.close()
    released.set()
    exiting.join(90)


def open_and_hold(channel: QueueChannel, opened: Any, finish: Any, results: Any) -> None:
    """Worker B: open with ``HELD`` records in its batch; close once told, and say what its
    close handed back (the records it could not queue)."""
    client = worker_client(channel)
    for i in range(HELD):
        client.track("b", "Tick", {"$insert_id": f"b-{i}"})
    opened.set()
    finish.wait(60)
    try:
        results.put([message.insert_id for message in client.close(timeout=10)])
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_a_second_release_does_not_free_the_slot_another_worker_took(
    emulator: EmulatorProcess,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, counter = observed_client(config_for(emulator.base_url, linger=30.0))
    transport: Any = client.pipeline.transport("default")
    channel = transport.channel
    context: Any = multiprocessing.get_context("fork")
    released, go_on, opened, finish = (context.Event() for _ in range(4))
    results = context.Queue()
    worker_a = context.Process(
        target=close_while_the_exit_hook_closes, args=(channel, released, go_on)
    )
    worker_b = context.Process(target=open_and_hold, args=(channel, opened, finish, results))
    try:
        worker_a.start()
        assert released.wait(30), "worker A's thread never closed its producer"
        worker_b.start()
        assert opened.wait(30), "worker B never opened"
        go_on.set()
        worker_a.join(30)
        assert worker_a.exitcode == 0

        # B closes only once the owner's close was seen looking at the open producers twice
        # (B counted open, as it is) or returned (B not counted).
        with caplog.at_level(logging.WARNING):
            left = close_the_owner_letting_the_worker_go(client, channel, finish, monkeypatch)
        worker_b.join(30)
        handed_back = results.get(timeout=10)
    finally:
        for worker in (worker_a, worker_b):
            if worker.is_alive():
                worker.kill()

    held = [f"b-{i}" for i in range(HELD)]
    assert handed_back == []
    assert sorted(emulator.insert_ids("track")) == ["a", *held]
    seen = sorted((r.message.insert_id, r.status.value) for r in counter.reports if r.message)
    assert seen == [(insert_id, "accepted") for insert_id in ["a", *held]]
    assert left == []
    assert transport.supervisor.counts == {"accepted": HELD + 1}
    assert transport.supervisor.unaccounted == 0
    told = [r.getMessage() for r in caplog.records if r.name.startswith("mixpanel_core")]
    assert told == []
