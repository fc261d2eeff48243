"""A producer SIGKILLed at any moment of its sends stops nobody: no lock is shared across
processes, so the owner's ``track`` and ``close(timeout)`` return and the sender exits.

The sender's liveness used to be a ``multiprocessing.Event`` and a locked ``Value``, read by
every producer before each batch: a producer killed while it held their lock (a semaphore,
which nobody releases for a dead process) froze every other producer, the owner's close and
the sender's exit, with no bound. Made deterministic: the victim stops for good inside the
first ``multiprocessing`` lock it takes while producing, and is SIGKILLed there; a victim that
takes none is SIGKILLed in the middle of its sends instead.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import select
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing import synchronize
from typing import Any

import pytest
from mp_workers import config_for, observed_client

from mixpanel_core.client import Mixpanel
from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration

TOOK_A_LOCK = b"L"
NO_LOCK = b"N"
SENDS_WITHOUT_A_LOCK = 200
"""Sends after which a victim that took no shared lock says so (and sends on until killed)."""
OWNER_EVENTS = 20
TRACK_BOUND = 20.0
"""Seconds the owner's OWNER_EVENTS tracks may take (batch_size 1: one frame each); they
take milliseconds unless they wait on something the dead victim holds."""
CLOSE_TIMEOUT = 5.0
CLOSE_BOUND = CLOSE_TIMEOUT + 15.0
SENDER_EXIT_BOUND = 15.0
CARRY_ON = (
    f"(the owner's tracks returned within {TRACK_BOUND}s, its close(timeout={CLOSE_TIMEOUT}) "
    f"within {CLOSE_BOUND}s, the sender exited)"
)


def freeze_in_the_first_shared_lock(client: Mixpanel, tell: int) -> None:
    """A fork child: produce through the inherited client; stop for good inside the first
    ``multiprocessing`` lock taken (writing TOOK_A_LOCK to ``tell``), or write NO_LOCK once
    SENDS_WITHOUT_A_LOCK sends took none, and send on. Told with a bare pipe, not a
    ``multiprocessing`` object, whose own lock would count."""
    enter = synchronize.SemLock.__enter__

    def enter_and_freeze(lock: Any) -> Any:
        held = enter(lock)
        os.write(tell, TOOK_A_LOCK)
        time.sleep(600)  # the SIGKILL lands here, with the lock held
        return held

    synchronize.SemLock.__enter__ = enter_and_freeze  # type: ignore[method-assign]
    for i in range(SENDS_WITHOUT_A_LOCK):
        client.track("victim", "Before", {"i": i})
    os.write(tell, NO_LOCK)
    i = SENDS_WITHOUT_A_LOCK
    while True:
        client.track("victim", "Before", {"i": i})
        i += 1


def send_until_killed(client: Mixpanel, tell: int) -> None:
    """A fork child: say it is sending, then send until SIGKILLed."""
    client.track("victim", "Before", {"i": 0})
    os.write(tell, NO_LOCK)
    i = 1
    while True:
        client.track("victim", "Before", {"i": i})
        i += 1


def finishes_within(call: Callable[[], object], bound: float) -> bool:
    """Whether ``call`` returned within ``bound`` seconds (on a daemon thread, so that one
    stuck for good does not hold up the test run); re-raises what it raised."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    if failure:
        raise failure[0]
    return not thread.is_alive()


def kill_a_victim(client: Mixpanel, target: Any, pause: float = 0.0) -> bytes:
    """Fork a victim running ``target``; SIGKILL it ``pause`` seconds after its word, which
    is returned."""
    read, write = os.pipe()
    try:
        victim: Any = multiprocessing.get_context("fork").Process(
            target=target, args=(client, write)
        )
        victim.start()
        try:
            ready, _, _ = select.select([read], [], [], 60)
            assert ready, "the victim never said it was sending"
            word = os.read(read, 1)
            time.sleep(pause)
        finally:
            os.kill(victim.pid, signal.SIGKILL)
            victim.join(10)
        return word
    finally:
        os.close(read)
        os.close(write)


def check_the_owner_carries_on(
    emulator: EmulatorProcess, client: Mixpanel
) -> tuple[bool, bool, bool]:
    """After the victims were killed: whether the owner's tracks, its close(CLOSE_TIMEOUT) and
    the sender's exit each finished within their bounds. Kills a sender still running."""
    transport: Any = client.pipeline.transport("default")
    sender = transport.supervisor.process

    def track() -> None:
        for i in range(OWNER_EVENTS):
            client.track("owner", "After", {"i": i})

    try:
        tracked = finishes_within(track, TRACK_BOUND)
        closed = finishes_within(lambda: client.close(timeout=CLOSE_TIMEOUT), CLOSE_BOUND)
        sender.join(SENDER_EXIT_BOUND)
        exited = sender.exitcode is not None
    finally:
        if sender.is_alive():  # frozen (before the fix): do not leak it
            sender.kill()
            sender.join(10)
    return tracked, closed, exited


def owner_events_delivered(emulator: EmulatorProcess) -> int:
    records = emulator.client.records("track")
    return len({r["properties"]["$insert_id"] for r in records if r["event"] == "After"})


def test_a_producer_killed_holding_a_lock_stops_neither_the_owner_nor_the_sender(
    emulator: EmulatorProcess,
) -> None:
    config = config_for(emulator.base_url, start_method="fork", batch_size=1, block_timeout=2.0)
    client, counter = observed_client(config)
    client.pipeline.build_all()

    word = kill_a_victim(client, freeze_in_the_first_shared_lock)
    tracked, closed, exited = check_the_owner_carries_on(emulator, client)

    assert (tracked, closed, exited) == (True, True, True), CARRY_ON
    assert owner_events_delivered(emulator) == OWNER_EVENTS
    assert counter.by_status["accepted"] >= OWNER_EVENTS
    assert word == NO_LOCK, "a producer takes a lock shared across processes"


KILLS = 25


def test_producers_killed_at_random_moments_of_their_sends_stop_nobody(
    emulator: EmulatorProcess,
) -> None:
    """A sweep over kill moments: mid-chunk, in the producers' ledger (whose record lock the
    kernel releases), between frames."""
    config = config_for(emulator.base_url, start_method="fork", batch_size=1, block_timeout=2.0)
    client, _ = observed_client(config)
    client.pipeline.build_all()
    moments = random.Random(7)

    for _ in range(KILLS):
        kill_a_victim(client, send_until_killed, pause=moments.uniform(0.0, 0.03))
    tracked, closed, exited = check_the_owner_carries_on(emulator, client)

    assert (tracked, closed, exited) == (True, True, True), CARRY_ON
    assert owner_events_delivered(emulator) == OWNER_EVENTS
