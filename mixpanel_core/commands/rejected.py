"""The rejected file: records that were invalid or that Mixpanel refused, as JSON lines with why.

Each line carries the keys of the buffered transport's dead-letter file (``time``,
``transport``, ``endpoint``, ``status``, ``reason``, ``http_status``, ``attempts``, ``record``)
plus ``field`` (what Mixpanel or the validator named), ``stage`` (``read``, ``validation``,
``fix``, ``delivery``) and ``source``/``index`` (where the record came from), so that
``mixpanel-core replay-dead-letters --file`` reads it like a dead-letter file.

A record from the forwarder's dead-letter topic also carries what the replay's commit would
otherwise lose: ``dead_letter``, its ``dead-letter-*`` headers (where the record sits in the
source topic, why it was dead-lettered, whether it was truncated), and, when its value is not
JSON, the whole value with ``record_encoding`` saying how it is written.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import attrs

from mixpanel_core.commands.errors import InputError
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.wire import dumps


@attrs.frozen
class Rejection:
    """One record that will not be delivered, and why."""

    stage: str
    status: str
    reason: str
    record: Any
    endpoint: str | None = None
    field: str | None = None
    http_status: int | None = None
    attempts: int = 0
    transport: str | None = None
    source: str | None = None
    index: int | None = None
    record_encoding: str | None = None
    """``None``: ``record`` is the record itself; ``"text"``: the complete text of a value that
    is not JSON; ``"base64"``: the complete value, not UTF-8, in base64."""
    dead_letter: tuple[tuple[str, str], ...] = ()
    """The ``dead-letter-*`` headers of a dead-letter topic record, as (name, text) pairs."""
    enriched: bool = True
    """Whether ``record`` went through the pipeline's enrichers (redaction, super properties)
    already: a replay of the line then does not run them again (a hash of a hash). ``False``
    for a record refused as it was read, which a replay must enrich."""

    @classmethod
    def from_report(
        cls, report: DeliveryReport, source: str | None = None, index: int | None = None
    ) -> Rejection:
        """A delivery report that is not ACCEPTED (its message is the record as sent)."""
        message = report.message
        return cls(
            stage="delivery",
            status=report.status.value,
            reason=report.reason or report.status.value,
            record=message.record if message is not None else None,
            endpoint=message.endpoint if message is not None else None,
            field=report.field,
            http_status=report.http_status,
            attempts=report.attempts,
            transport=report.transport,
            source=source,
            index=index,
        )

    def describe(self) -> str:
        """One line for a terminal: where, and why."""
        where = f"{self.source} record {self.index}: " if self.index is not None else ""
        return f"{where}{self.status}: {self.reason}"


class RejectedFile:
    """Appends rejections to a JSON-lines file; ``sync`` writes them and makes them durable.

    The file only ever grows by whole lines: ``write`` keeps the line, ``sync`` writes what it
    kept, and a sync that fails (a full disk) cuts the file back to where the last sync
    left it. A full disk left half a line, and the next run's first line was appended to
    it: one line of two records, which no replay can read.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered: what is written is known, to cut back to. Readable: its last byte.
            self._handle = self.path.open("a+b", buffering=0)
            self._synced = os.fstat(self._handle.fileno()).st_size
            torn = (
                self._synced > 0 and os.pread(self._handle.fileno(), 1, self._synced - 1) != b"\n"
            )
        except OSError as exc:
            raise InputError(f"{self.path}: cannot be opened for writing: {exc}") from exc
        self._pending = bytearray(b"\n" if torn else b"")
        """The lines written since the last sync; first, the line end that a line cut short
        by a run killed as it wrote lacks: that line stays as it is, and the next one starts
        on a line of its own."""
        self.kept = 0
        """Lines synced to the file by this run."""
        self._lines = 0
        """Lines in ``_pending``."""
        self.failed = False
        """Whether a sync failed: the lines written since the one before are not in the file."""

    def write(self, rejection: Rejection) -> None:
        entry = {
            "time": time.time(),
            "transport": rejection.transport,
            "endpoint": rejection.endpoint,
            "status": rejection.status,
            "reason": rejection.reason,
            "field": rejection.field,
            "http_status": rejection.http_status,
            "attempts": rejection.attempts,
            "stage": rejection.stage,
            "enriched": rejection.enriched,
            "source": rejection.source,
            "index": rejection.index,
            "record": rejection.record,
        }
        # Only on the lines that need them: the other keys are those of a dead-letter file.
        if rejection.record_encoding is not None:
            entry["record_encoding"] = rejection.record_encoding
        if rejection.dead_letter:
            entry["dead_letter"] = dict(rejection.dead_letter)
        self._pending += dumps(entry) + b"\n"
        self._lines += 1

    def sync(self) -> None:
        """Write the lines kept since the last sync, and flush them to disk: called before a
        checkpoint or an offset says their records are done."""
        descriptor = self._handle.fileno()
        try:
            written = memoryview(self._pending)
            while written:
                written = written[os.write(descriptor, written) :]
            os.fsync(descriptor)
        except OSError as exc:
            self.failed = True
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, self._synced)
            # Not written again by close: their records are not marked done, and a rerun
            # meets them again.
            self._pending, self._lines = bytearray(), 0
            raise self._cannot_write(exc) from exc
        self._synced += len(self._pending)
        self.kept += self._lines
        self._pending, self._lines = bytearray(), 0

    def holding(self, rejected: int) -> str:
        """Where ``rejected`` records said rejected went, for a summary line: `` (in FILE)``,
        or how many of them, when a sync failed (the error says why) or cut the run short."""
        if not rejected:
            return ""
        if self.kept >= rejected:
            return f" (in {self.path})"
        return f" ({self.kept:,} of them in {self.path})"

    def close(self) -> None:
        if self._handle.closed:
            return
        try:
            self.sync()
        finally:
            # sync has already said why when the data cannot be written; closing fails the
            # same way and must not hide that one-line error behind a traceback.
            with contextlib.suppress(OSError):
                self._handle.close()

    def _cannot_write(self, exc: OSError) -> InputError:
        return InputError(
            f"{self.path}: cannot write rejected records: {exc.strerror or exc}; nothing was "
            "marked done past them"
        )
