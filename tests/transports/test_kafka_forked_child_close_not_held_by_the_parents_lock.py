"""A ``fork()`` child's ``close()`` does not wait for a lock one of the parent's threads held at
the fork. The producer's network thread takes the acknowledgements' lock for each record it
settles, so a worker forked while the parent was producing could inherit it held; nobody in
the child would ever release it, and the child's first ``close()`` (at its exit too) hung for
ever. Against the real broker; the lock is held by a parent thread, as the network thread
holds it in ``Acknowledgements.claim``, so that the fork lands inside it every time."""

from __future__ import annotations

import os
import threading
import time

import pytest

from transports.kafka import KafkaTransport

from .kafka_cases import events

pytestmark = pytest.mark.integration

CHILD_BOUND = 20.0
"""Seconds the child is given; its close() below takes a fraction of one when it does not hang."""


def _wait_or_kill(pid: int, bound: float) -> int | None:
    """The child's exit code, or ``None`` if it had to be killed after ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


@pytest.mark.parametrize("sends_first", [False, True], ids=["close-only", "send-then-close"])
def test_child_close_is_not_held_by_a_lock_a_parent_thread_held_at_the_fork(
    kafka_bootstrap: str, kafka_topic: str, sends_first: bool
) -> None:
    transport = KafkaTransport(kafka_bootstrap, kafka_topic, {})
    try:
        transport.send(events(1, tag="parent")[0])
        assert transport.flush(30) == []
        held = threading.Event()
        release = threading.Event()

        def holder() -> None:
            with transport._acks.lock:
                held.set()
                release.wait(60)

        thread = threading.Thread(target=holder, daemon=True)
        thread.start()
        assert held.wait(10)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if sends_first:
                    transport.send(events(1, tag="child")[0])
                left = transport.close(5)
                code = 0 if not left else 2
            finally:
                os._exit(code)
        release.set()
        thread.join(10)
        assert _wait_or_kill(pid, CHILD_BOUND) == 0
    finally:
        transport.close(10)
