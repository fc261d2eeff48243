"""``DeadLetterFile``: where records that could not be delivered go, as JSON lines with why.

Each line is ``{"time", "transport", "endpoint", "status", "reason", "http_status",
"attempts", "record"}``, and ``"maybe_applied": true`` for a record Mixpanel may have applied
(``DeliveryReport.maybe_applied``); ``record`` is the wire record exactly as it would have been
sent, so a line can be replayed (``mixpanel_core.messages.message_from_record(endpoint,
record)``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from mixpanel_core.appended_lines import CutShortError, append_lines
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
                append_lines(self.path, lines, new_line_first=self._cut)
                self._cut = False
            except OSError as exc:
                whole = exc.whole if isinstance(exc, CutShortError) else 0
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
    if report.maybe_applied:
        # Only where it is true: what a replay is screened by (a profile update applied
        # again is applied twice), found without reading the reason's words.
        entry["maybe_applied"] = True
    return dumps(entry) + b"\n"
