"""``LogThrottle``: at most one log line per key a period, and how many went unsaid between.

During an incident the same line (a refusal of the credentials, a retry of a request) would be
written for every request, a dozen times a second, and bury the one that says something new.
The first occurrence of a key is said at once; later ones within the period are counted, and
the next line says how many there were: the next occurrence's once the period has passed, or
one of its own (``overdue``, ``take_unsaid``), so the lines add up to every occurrence.

``say`` writes such a line: a logging handler that raises (a log shipper down) must not stop
what the line is about, a retry that would have delivered the records.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Hashable
from typing import Generic, TypeVar

from mixpanel_core.process_fork import in_fork_children

K = TypeVar("K", bound=Hashable)


class LogThrottle(Generic[K]):
    """Decides, for each occurrence of a key, whether a line is due; thread-safe and reset in a
    ``fork()`` child (a lock another thread held at the fork would stay held there, and what
    the parent counted is the parent's to say)."""

    def __init__(self, every: float) -> None:
        self.every = every
        """Seconds between two lines of one key."""
        self._start()
        in_fork_children(self, LogThrottle._start)

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[K, tuple[float, int]] = {}
        """By key: when its last line was due, and how much was counted since without one."""
        self._unsaid = 0
        """The sum of what is counted and not said, over the keys: read without the lock
        (``overdue``), as a hint only."""

    def due(self, key: K, count: int = 1) -> int | None:
        """If a line of ``key`` is due now, how much was counted since its last line (to say in
        it); otherwise ``None``, and ``count`` is added to what the next line says."""
        now = time.monotonic()
        with self._lock:
            said_at, since = self._keys.get(key, (now - self.every, 0))
            if now - said_at >= self.every:
                self._keys[key] = (now, 0)
                self._unsaid -= since
                return since
            self._keys[key] = (said_at, since + count)
            self._unsaid += count
            return None

    def withdraw(self, key: K, count: int = 1) -> None:
        """Take back up to ``count`` of what was counted for ``key`` and not said yet: it did
        not happen after all (a retry its wait was cut short of)."""
        with self._lock:
            said_at, since = self._keys.get(key, (0.0, 0))
            taken = min(count, since)
            if taken:
                self._keys[key] = (said_at, since - taken)
                self._unsaid -= taken

    def overdue(self) -> list[tuple[K, int]]:
        """What was counted for each key whose period has passed since its last line, to say
        now (its next occurrence is counted from now): a second burst within the period of
        a line, and nothing after it, was otherwise unsaid until the process ended."""
        if not self._unsaid:
            return []
        now = time.monotonic()
        found: list[tuple[K, int]] = []
        with self._lock:
            for key, (said_at, since) in self._keys.items():
                if since and now - said_at >= self.every:
                    found.append((key, since))
            for key, since in found:
                self._keys[key] = (now, 0)
                self._unsaid -= since
        return found

    def take_unsaid(self) -> list[tuple[K, int]]:
        """What was counted since each key's last line, forgetting every key (a sender that
        stops, or the process, says it: its lines must add up to every occurrence)."""
        with self._lock:
            keys, self._keys, self._unsaid = self._keys, {}, 0
        return [(key, since) for key, (_, since) in keys.items() if since]


def say(logger: logging.Logger, level: int, message: str, *args: object) -> None:
    """``logger.log``, but a handler that raises is reported on stderr, as the standard
    handlers report their own failures (``Handler.handleError``), and goes no further."""
    try:
        logger.log(level, message, *args)
    except Exception:
        if logging.raiseExceptions:
            with contextlib.suppress(Exception):  # stderr gone too: nothing is left to tell
                sys.stderr.write(f"--- a handler of the logger {logger.name!r} failed:\n")
                traceback.print_exc(file=sys.stderr)
