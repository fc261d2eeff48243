"""A signal's exception raised just as a write takes the queue lock (review R3, D2: the
documented SIGTERM handler's SystemExit, or Ctrl-C, landing as ``acquire()`` returns) left
the lock held for ever: every later ``track()`` in the process then waited on it, and the
owner's close could not ask the sender to stop. The lock is now released by whichever
thread holds it when the write ends, however it ends.

The signal's timing is made exact by a lock whose first ``acquire`` takes it and then raises,
as the handler's exception does when it lands there."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from mp_workers import config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration


class InterruptedOnce:
    """The queue lock, whose first acquire (or release) is interrupted right after it took
    the lock (or just before it lets it go)."""

    def __init__(self, lock: Any, where: str) -> None:
        self._lock = lock
        self._where = where
        self._interrupted = False

    def _interrupt(self, where: str) -> None:
        if where == self._where and not self._interrupted:
            self._interrupted = True
            raise KeyboardInterrupt  # as a signal handler's exception lands there

    def acquire(self, timeout: float = -1) -> bool:
        taken: bool = self._lock.acquire(timeout=timeout)
        if taken:
            self._interrupt("acquire")
        return taken

    def release(self) -> None:
        self._interrupt("release")
        self._lock.release()

    def _is_owned(self) -> bool:
        owned: bool = self._lock._is_owned()
        return owned


@pytest.mark.parametrize("where", ["acquire", "release"])
def test_a_write_interrupted_as_it_takes_the_queue_lock_leaves_it_free(
    emulator: EmulatorProcess, where: str
) -> None:
    """Interrupted at ``release``, the lock stays held until this thread's next write, which
    releases it (Python gives no way to close that gap): the next write goes through."""
    client, counter = observed_client(config_for(emulator.base_url, batch_size=1))
    transport: Any = client.pipeline.transport("default")
    producer = transport._producer
    producer._queue_lock = InterruptedOnce(producer._queue_lock, where)
    with pytest.raises(KeyboardInterrupt):
        client.track("user-1", "Interrupted")

    # The next write on this thread goes through: before, it waited on the lock for ever
    # (an alarm ends that wait: a lock's wait gives way to a signal's exception).
    def left_held(signum: int, frame: Any) -> None:
        raise TimeoutError("the queue lock was left held")

    previous = signal.signal(signal.SIGALRM, left_held)
    signal.alarm(10)
    try:
        client.track("user-1", "Later")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    client.close(timeout=30)
    # Interrupted at acquire, the first event was never written (reported FAILED); at
    # release, it was written whole, and delivered.
    expected = 1 if where == "acquire" else 2
    assert (counter.by_status["failed"], counter.by_status["accepted"]) == (2 - expected, expected)
    assert emulator.client.stats()["accepted"]["track"] == expected
