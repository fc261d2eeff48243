"""``ShutdownClock``: the shutdown deadline, and how long the Kafka calls that wait for the
broker may take before and after a stop.

A commit waits for the broker at most ``COMMIT_TIMEOUT`` (kafka-python's own bound is
``request_timeout_ms``, 30 s by default, which a broker that stopped answering would hold a
SIGTERM for); one not answered in time is made again at the next commit, with the offsets done
by then. Once a stop is requested, the Kafka calls that wait for the broker (the final commit,
leaving the group) are given the time left before the shutdown deadline, at least
``KAFKA_FLOOR``: an unresponsive broker cannot hold the exit. A commit that runs out of time
then leaves its records uncommitted, delivered again by the next owner of their partitions (at
least once).
"""

from __future__ import annotations

from collections.abc import Callable

KAFKA_FLOOR = 1.0
"""Least time the commit and the close get after a stop, even past the shutdown deadline: a
healthy broker answers well within it, so its last commit and the group leave still happen."""
COMMIT_TIMEOUT = 5.0
"""Longest a commit waits for the broker before a stop: a healthy broker answers in
milliseconds, and a commit out when a SIGTERM comes holds the exit until it ends."""


class ShutdownClock:
    """The shutdown deadline, counted from the first ``start``: the first stop request
    (``Forwarder.request_stop``, which signal handlers and other threads call)."""

    def __init__(self, clock: Callable[[], float], seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds
        self.by: float | None = None
        """The deadline (``clock`` time) once a stop was requested, ``None`` before."""

    def start(self) -> None:
        if self.by is None:
            self.by = self._clock() + self._seconds

    def commit_timeout_ms(self) -> int:
        """How long a commit may wait for the broker: ``COMMIT_TIMEOUT``, and once a stop is
        requested the time left before the shutdown deadline, at least ``KAFKA_FLOOR``."""
        by = self.by
        seconds = COMMIT_TIMEOUT if by is None else max(KAFKA_FLOOR, by - self._clock())
        return int(seconds * 1000)

    def kafka_timeout_ms(self) -> int | None:
        """How long a close may wait for the broker: ``None`` (kafka-python's
        ``request_timeout_ms``) until a stop is requested, then as long as a commit."""
        return None if self.by is None else self.commit_timeout_ms()

    def deadline(self) -> float | None:
        """The deadline handed to deliveries: read again while a request is out, so a stop
        requested meanwhile bounds it (see ``Deliver``)."""
        return self.by

    def passed(self) -> bool:
        return self.by is not None and self._clock() >= self.by
