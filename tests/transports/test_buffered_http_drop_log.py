"""Drops are logged, the first and every thousandth, also when threads drop at once.

The count that decides the line used to be read after the queue's lock was let go: another
thread's drop in between made both threads see a count past their own, and neither logged,
so a process could drop messages without a single line. The count of each drop is now taken
with the drop, under the lock.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType

import pytest

from mixpanel_core.bounded_queue import BoundedQueue
from mixpanel_core.emulator import Emulator
from mixpanel_core.messages import Event
from mixpanel_core.sender_records import Record
from transports.buffered_http import BufferedHttpTransport

from .test_buffered_http import make_event, transport_for

pytestmark = pytest.mark.integration

LOGGER = "mixpanel_core.buffering"


def _drop_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "dropped so far" in r.getMessage()]


class _LockThatLetsAnotherDropIn:
    """The queue's lock, which once, right after it is let go with the first drop counted,
    runs ``between``: the moment another thread's drop came in before this one was logged."""

    def __init__(self, queue: BoundedQueue[Record], between: threading.Thread) -> None:
        self.real = queue._lock
        self.queue = queue
        self.between = between

    def __enter__(self) -> None:
        self.real.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.real.release()
        if self.queue.total_dropped == 1 and not self.between.ident:
            self.between.start()
            self.between.join()

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


def test_the_first_drop_is_logged_when_another_thread_drops_before_it_is(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    # One message fills the queue; the sender lingers (it waits for a full batch) and keeps it.
    transport = transport_for(
        mixpanel_emulator, when_full="drop_newest", max_queue_messages=1, linger=600.0
    )
    transport.send(make_event("drop-log", 0))
    queue = transport.sender._queue
    other = threading.Thread(target=transport.send, args=(make_event("drop-log", 2),))
    queue._lock = _LockThatLetsAnotherDropIn(queue, other)  # type: ignore[assignment]
    transport.send(make_event("drop-log", 1))  # the first drop; the other thread's comes next
    queue._lock = queue._lock.real  # type: ignore[attr-defined]
    assert transport.dropped == 2
    assert _drop_lines(caplog) == [
        "buffered: dropped: the queue was full (1 messages, "
        f"{queue.bytes} bytes; drop_newest) (1 dropped so far)"
    ]
    assert transport.close(30) == []


def _produce(
    transport: BufferedHttpTransport, messages: list[Event], start: threading.Barrier
) -> None:
    start.wait()
    for message in messages:
        transport.send(message)


def test_threads_dropping_at_once_log_the_first_drop_and_every_thousandth(
    mixpanel_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Each drop here is one message: exactly one line for the first and one per thousand.

    A stress test, under real contention: it caught the race in about one run of three (the
    test above catches it every time, by placing the other thread's drop); it guards the whole
    path, threads and all, against what that test cannot foresee."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    messages = [make_event("drop-many", n) for n in range(600)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: the race shows up
    try:
        for _ in range(20):
            caplog.clear()
            transport = transport_for(
                mixpanel_emulator, when_full="drop_newest", max_queue_messages=1, linger=600.0
            )
            start = threading.Barrier(8)
            threads = [
                threading.Thread(target=_produce, args=(transport, messages, start))
                for _ in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            dropped = transport.dropped
            lines = _drop_lines(caplog)
            assert len(lines) == 1 + dropped // 1000, lines
            # Not necessarily the first line: its thread may log after others dropped more.
            assert any(line.endswith("(1 dropped so far)") for line in lines), lines
            transport.close(0)
    finally:
        sys.setswitchinterval(switch)
