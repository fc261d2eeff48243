"""``LogThrottle``: at most one log line per key a period, and how many went unsaid between.

During an incident the same line (a refusal of the credentials, a retry of a request) would be
written for every request, a dozen times a second, and bury the one that says something new.
The first occurrence of a key is said at once; later ones within the period are counted, and
the next line says how many there were.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

from mixpanel_core.process_fork import in_fork_children

K = TypeVar("K", bound=Hashable)


class LogThrottle(Generic[K]):
    """Decides, for each occurrence of a key, whether a line is due; thread-safe and reset in a
    ``fork()`` child (a lock another thread held at the fork would stay held there)."""

    def __init__(self, every: float) -> None:
        self.every = every
        """Seconds between two lines of one key."""
        self._start()
        in_fork_children(self, LogThrottle._start)

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[K, tuple[float, int]] = {}
        """By key: when its last line was due, and how much was counted since without one."""

    def due(self, key: K, count: int = 1) -> int | None:
        """If a line of ``key`` is due now, how much was counted since its last line (to say in
        it); otherwise ``None``, and ``count`` is added to what the next line says."""
        now = time.monotonic()
        with self._lock:
            said_at, since = self._keys.get(key, (now - self.every, 0))
            if now - said_at >= self.every:
                self._keys[key] = (now, 0)
                return since
            self._keys[key] = (said_at, since + count)
            return None

    def take_unsaid(self) -> list[tuple[K, int]]:
        """What was counted since each key's last line, forgetting every key (a sender that
        stops says it: its lines must add up to every occurrence)."""
        with self._lock:
            keys, self._keys = self._keys, {}
        return [(key, since) for key, (_, since) in keys.items() if since]
