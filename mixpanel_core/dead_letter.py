"""``DeadLetterFile``: where records that could not be delivered go, as JSON lines with why.

Each line is ``{"time", "transport", "endpoint", "status", "reason", "http_status",
"attempts", "record"}``; ``record`` is the wire record exactly as it would have been sent, so
a line can be replayed (``mixpanel_core.messages.message_from_record(endpoint, record)``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import threading
import time
from collections.abc import Iterable, Mapping
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
        self.unwritten = 0
        """Records that could not be written (disk full, file gone read-only), in this
        process."""
        self._cut = False
        """A write was interrupted part way: the next starts with a line break."""
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
        """Append a line for each report; what cannot be written is logged and counted."""
        reports = list(reports)
        kept = [(r, r.message) for r in reports if r.message is not None]
        if len(kept) < len(reports):
            # Only bytes no producer of ours writes (``send_records`` input that is not a
            # record of its endpoint) become reports without a message: Mixpanel would not
            # take them either, and a dead letter of them could not be replayed.
            logger.error(
                "%d record(s) not kept in %s: not a record of their endpoint (first: %s)",
                len(reports) - len(kept),
                self.path,
                next(r.reason for r in reports if r.message is None),
            )
        if not kept:
            return
        with self._lock:
            try:
                lines = [_line(report, message) for report, message in kept]
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _append(self.path, lines, new_line_first=self._cut)
                self._cut = False
            except OSError as exc:
                whole = exc.whole if isinstance(exc, _CutShortError) else 0
                self.unwritten += len(kept) - whole
                logger.error(
                    "could not write %d of %d record(s) to %s (%s); the first not written: %s; "
                    "their reports still reach mixpanel_delivered",
                    len(kept) - whole,
                    len(kept),
                    self.path,
                    exc.strerror or exc,
                    _named(kept[whole][1]),
                )
            except Exception:
                raise
            except BaseException as interruption:
                # A signal's SystemExit or a Ctrl-C while the lines were made or written: how
                # much went in is not known, so all count as not written, and the next write
                # starts a line of its own after whatever was cut.
                self._cut = True
                self.unwritten += len(kept)
                logger.error(
                    "a write of %d record(s) to %s was interrupted (%s): any of them may be "
                    "missing; the first: %s; their reports still reach mixpanel_delivered",
                    len(kept),
                    self.path,
                    type(interruption).__name__,
                    _named(kept[0][1]),
                )
                raise

    def reset_after_fork(self) -> None:
        """A lock held by another parent thread at fork time would never be released here;
        the count is this process's own."""
        self._lock = threading.Lock()
        self.unwritten = 0


STANDARD_STREAMS = {
    "/dev/stdout": 1,
    "/dev/stderr": 2,
    "/dev/fd/1": 1,
    "/dev/fd/2": 2,
    "/proc/self/fd/1": 1,
    "/proc/self/fd/2": 2,
}
"""Paths naming this process's own stdout or stderr: written through its descriptor. Opened
anew, ``/dev/stderr`` redirected with ``2> app.log`` writes at offset 0 of its own (the app's
next line overwrote the dead letter), and one that is a socket (systemd's journal) refuses."""


def _append(path: Path, lines: list[bytes], *, new_line_first: bool = False) -> None:
    """Append ``lines`` to ``path`` (``new_line_first``: after a line break, whatever the
    file ends with: a write was cut where it cannot be read back, as on a FIFO).

    Opened per write, write-only and in append mode: no handle outlives a fork, and a FIFO
    or a write-only file work as well as a regular file. The write is made under an
    exclusive ``flock``: writers of several processes (forked workers) never interleave, also
    on a FIFO, where a write larger than the pipe's atomic size (4 KiB) would be split, and
    the check that the file ends a line is not raced by another writer's append. A write cut
    short (disk full) raises ``_CutShortError`` with how many lines did go in whole.
    """
    data = b"".join(lines)
    stream = STANDARD_STREAMS.get(str(path))
    if stream is not None:
        _write_all(stream, b"\n" + data if new_line_first else data)
        return
    # Not blocking in open: a FIFO nobody reads would hold the sender for ever (ENXIO
    # instead); writes do block, as any log's do, so a slow reader loses nothing.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
    try:
        os.set_blocking(fd, True)
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when closed
        if new_line_first or not _ends_a_line(path):
            # A write cut short, or a process killed mid-write, left part of a line: start
            # one of our own, or that fragment would make the first line written here
            # unreadable too.
            data = b"\n" + data
        _write_all(fd, data)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    done = 0
    try:
        while done < len(data):
            done += os.write(fd, memoryview(data)[done:])
    except OSError as exc:
        whole = data[:done].count(b"\n") - (data[:1] == b"\n" and done > 0)
        raise _CutShortError(exc, whole) from exc


class _CutShortError(OSError):
    """A write that failed part way: ``whole`` lines went in whole before it."""

    def __init__(self, cause: OSError, whole: int) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.whole = whole


def _ends_a_line(path: Path) -> bool:
    """Whether ``path`` is missing, empty, unreadable, not a regular file, or ends a line."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return True  # a FIFO or a device: nothing to read back
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # missing (the write creates it), or write-only: nothing to mend
        return True
    try:
        size = os.fstat(fd).st_size
        return size == 0 or os.pread(fd, 1, size - 1) == b"\n"
    finally:
        os.close(fd)


def _named(message: Message | None) -> str:
    """A record as a log names it: its endpoint and ``$insert_id``, never its content."""
    if message is None:
        return "none"
    properties = message.record.get("properties")
    insert_id = properties.get("$insert_id") if isinstance(properties, Mapping) else None
    return f"/{message.endpoint} record" + (f" $insert_id {insert_id}" if insert_id else "")


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
