"""A signal's exception raised just as a write takes the queue lock (review R3, D2: the
documented SIGTERM handler's SystemExit, or Ctrl-C, landing as ``acquire()`` returns) left
the lock held for ever: every later ``track()`` in the process then waited on it, and the
owner's close could not ask the sender to stop. The lock is now released by whichever
thread holds it when the write ends, however it ends.

The signal's timing is made exact by a lock whose first ``acquire`` takes it and then raises,
as the handler's exception does when it lands there."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from mp_workers import config_for, observed_client

from mixpanel_core.emulator import EmulatorProcess

pytestmark = pytest.mark.integration


class InterruptedOnce:
    """The queue lock, whose first acquire is interrupted right after it took the lock."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        self._interrupted = False

    def acquire(self, timeout: float = -1) -> bool:
        taken: bool = self._lock.acquire(timeout=timeout)
        if taken and not self._interrupted:
            self._interrupted = True
            raise KeyboardInterrupt  # as a signal handler's exception lands there
        return taken

    def release(self) -> None:
        self._lock.release()

    def _is_owned(self) -> bool:
        owned: bool = self._lock._is_owned()
        return owned


def test_a_write_interrupted_as_it_takes_the_queue_lock_leaves_it_free(
    emulator: EmulatorProcess,
) -> None:
    client, counter = observed_client(config_for(emulator.base_url, batch_size=1))
    transport: Any = client.pipeline.transport("default")
    producer = transport._producer
    producer._queue_lock = InterruptedOnce(producer._queue_lock)
    with pytest.raises(KeyboardInterrupt):
        client.track("user-1", "Interrupted")
    # The next write goes through: before, it waited on the lock for ever.
    later = threading.Thread(target=client.track, args=("user-1", "Later"), daemon=True)
    later.start()
    later.join(10)
    assert not later.is_alive(), "the queue lock was left held"
    client.close(timeout=30)
    assert counter.by_status == {"failed": 1, "accepted": 1}
    assert emulator.client.stats()["accepted"]["track"] == 1
