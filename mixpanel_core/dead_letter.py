"""``DeadLetterFile``: where records that could not be delivered go, as JSON lines with why.

Each line is ``{"time", "transport", "endpoint", "status", "reason", "http_status",
"attempts", "record"}``; ``record`` is the wire record exactly as it would have been sent, so
a line can be replayed (``mixpanel_core.messages.message_from_record(endpoint, record)``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.errors import ConfigError
from mixpanel_core.messages import Message
from mixpanel_core.wire import dumps

logger = logging.getLogger(__name__)


class DeadLetterFile:
    """Appends reports of undelivered messages to a JSON-lines file; safe from many threads."""

    def __init__(self, path: str | os.PathLike[str], key: str = "dead_letter_path") -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._check_writable(key)

    def _check_writable(self, key: str) -> None:
        # Found now, when the transport is built, rather than when the first record fails
        # and has nowhere to go. Nothing is created but the directory.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{key}: cannot create {self.path.parent}: {exc.strerror}") from None
        target = self.path if self.path.exists() else self.path.parent
        if self.path.is_dir() or not os.access(target, os.W_OK):
            raise ConfigError(f"{key}: {self.path} is not a writable file")

    def write(self, reports: Iterable[DeliveryReport]) -> None:
        lines = [_line(r, r.message) for r in reports if r.message is not None]
        if not lines:
            return
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Opened per write, in append mode: whole lines from forked children interleave
                # safely, and no handle outlives a fork.
                with self.path.open("a+b") as handle:
                    # A write cut short (disk full) or a process killed mid-write leaves part
                    # of a line: start a line of our own, or that fragment would make the
                    # first line written here unreadable too.
                    end = handle.seek(0, os.SEEK_END)
                    if end:
                        handle.seek(end - 1)
                        if handle.read(1) != b"\n":
                            lines.insert(0, b"\n")
                    handle.write(b"".join(lines))
        except OSError:
            logger.exception("could not write %d record(s) to %s", len(lines), self.path)

    def reset_after_fork(self) -> None:
        """A lock held by another parent thread at fork time would never be released here."""
        self._lock = threading.Lock()


def _line(report: DeliveryReport, message: Message) -> bytes:
    entry = {
        "time": time.time(),
        "transport": report.transport,
        "endpoint": message.endpoint,
        "status": report.status.value,
        "reason": report.reason,
        "http_status": report.http_status,
        "attempts": report.attempts,
        "record": message.record,
    }
    return dumps(entry) + b"\n"
