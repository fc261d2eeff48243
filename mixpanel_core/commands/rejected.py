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

import os
import time
from pathlib import Path
from typing import Any

import attrs

from mixpanel_core.appended_lines import CutShortError, append_lines
from mixpanel_core.commands.errors import InputError
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.wire import dumps

WRITE_EVERY = 1024 * 1024
"""Bytes of lines a rejected file holds before it writes them, between two syncs."""


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
    """Appends rejections to a JSON-lines file; ``sync`` makes them durable.

    Appended as a dead-letter file is (``appended_lines``): other runs may append to the
    same file, it only ever gains whole lines, and a run's lines go out every
    ``WRITE_EVERY`` bytes and at ``sync``, never held for a whole chunk.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._held: int | None = None
        """The FIFO's descriptor, kept open for the run: opened for each write, it gave its
        reader an end of file after each (``cat`` ended, and later lines went to nobody)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_fifo():
                # Not blocking in open: with no reader, ENXIO at once rather than a wait.
                self._held = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
                os.set_blocking(self._held, True)
            else:
                # Created (and found writable) now, before anything is sent.
                append_lines(self.path, [])
        except OSError as exc:
            raise InputError(f"{self.path}: cannot be opened for writing: {exc}") from exc
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.kept = 0
        """Lines this run put in the file whole."""

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
        line = dumps(entry) + b"\n"
        self._pending.append(line)
        self._pending_bytes += len(line)
        if self._pending_bytes >= WRITE_EVERY:
            self._write(sync=False)

    def sync(self) -> None:
        """Write the lines not written yet, and flush the file to disk: called before a
        checkpoint or an offset says their records are done."""
        self._write(sync=True)

    def _write(self, *, sync: bool) -> None:
        lines, self._pending, self._pending_bytes = self._pending, [], 0
        try:
            append_lines(self.path, lines, sync=sync, held=self._held)
        except OSError as exc:
            # The lines not written are not written again (by close): their records are not
            # marked done, and a rerun meets them again.
            self.kept += exc.whole if isinstance(exc, CutShortError) else 0
            raise self._cannot_write(exc) from exc
        self.kept += len(lines)

    def holding(self, rejected: int) -> str:
        """Where ``rejected`` records said rejected went, for a summary line: `` (in FILE)``,
        or how many of them, when a sync failed (the error says why) or cut the run short."""
        if not rejected:
            return ""
        if self.kept >= rejected:
            return f" (in {self.path})"
        return f" ({self.kept:,} of them in {self.path})"

    def close(self) -> None:
        """Close the file, dropping the lines not written yet (R71 F2): every settled chunk
        or batch is synced before its checkpoint or offset moves, so the lines still pending
        here are those of one that was not (a run interrupted as it kept them). Written,
        they would be written again by the rerun, which meets their records again."""
        self._pending, self._pending_bytes = [], 0
        if self._held is not None:
            os.close(self._held)
            self._held = None

    def _cannot_write(self, exc: OSError) -> InputError:
        return InputError(
            f"{self.path}: cannot write rejected records: {exc.strerror or exc}; nothing was "
            "marked done past them"
        )
