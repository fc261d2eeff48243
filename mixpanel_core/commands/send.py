"""``mixpanel-core send FILE...``: backfill JSON, NDJSON or gzipped files through the pipeline.

Each record is validated and enriched by the configured plugins and sent by the configured
transport (``--transport`` picks one), in chunks of ``--batch-size`` records. After each chunk the
transports are flushed and the delivery reports read; only then does the checkpoint move past
it. Events without ``$insert_id`` get one derived from the file's content and the record's
position, so records sent again after an interruption are deduplicated by Mixpanel.

Exit codes (also in docs/commands.md): 0 when every record was accepted or written to the
rejected file; 1 when anything was left undone (a record not delivered after the retry budget,
refused credentials, rejected records with no ``--rejected-file`` to keep them, an unreadable
file or configuration), with a one-line reason; 130 when interrupted. In both of the latter the
checkpoint holds the last confirmed position: run the same command again to resume.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import NoReturn

import attrs

from mixpanel_core.commands.checkpoint import Checkpoint, check_file, file_identity
from mixpanel_core.commands.confirmed import (
    SUBMIT_REFUSALS,
    ChunkOutcome,
    ConfirmedDelivery,
    not_sent,
    only_transport,
)
from mixpanel_core.commands.errors import CommandError, InputError
from mixpanel_core.commands.paths import RunFile, read, refuse_shared_files, written
from mixpanel_core.commands.progress import ProgressLine
from mixpanel_core.commands.records import build_message, infer_endpoint, problem_field
from mixpanel_core.commands.rejected import RejectedFile, Rejection
from mixpanel_core.commands.sources import BadRecord, RecordFile
from mixpanel_core.config import Config, load_config
from mixpanel_core.errors import ValidationError
from mixpanel_core.messages import ENDPOINTS, Endpoint

DEFAULT_BATCH_SIZE = 5000
SHOWN_REJECTIONS = 10
"""Rejections printed to stderr when there is no rejected file to hold them."""
CLOSE_TIMEOUT = 5.0
"""Seconds an interrupted run gives its transports to finish (the checkpoint is safe anyway)."""

EPILOG = """\
examples:
  mixpanel-core send events.ndjson.gz --config mixpanel.toml
  mixpanel-core send export-*.json --rejected-file rejected.jsonl --checkpoint send.checkpoint
  mixpanel-core send profiles.ndjson --endpoint engage --transport direct
  # interrupted? run the same command again: confirmed records are not sent twice

exit codes: 0 everything accepted or written to --rejected-file; 1 something was not
delivered (reason on stderr; rerun to resume); 130 interrupted.
"""

AfterRecord = Callable[[Path, int], None]
"""Called after each record is handled, with its file and index (tests stop a run with it)."""


@attrs.frozen
class SendOptions:
    """What to send, and where to keep what could not be sent and how far it got."""

    files: tuple[Path, ...]
    endpoint: Endpoint | None = None
    transport: str | None = None
    rejected_file: Path | None = None
    checkpoint: Path | None = None
    batch_size: int = DEFAULT_BATCH_SIZE


@attrs.define
class SendTally:
    """Counts for the summary line."""

    files: int = 0
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0
    first_rejection: str | None = None
    started: float = attrs.field(factory=time.monotonic)

    def summary(self, rejected_file: RejectedFile | None) -> str:
        elapsed = time.monotonic() - self.started
        kept = rejected_file.holding(self.rejected) if rejected_file else ""
        resumed = f", {self.skipped:,} confirmed before" if self.skipped else ""
        return (
            f"sent {self.records:,} records from {self.files} file(s): {self.accepted:,} "
            f"accepted, {self.rejected:,} rejected or invalid{kept}{resumed}; {elapsed:.1f}s "
            f"({self.records / max(elapsed, 1e-6):,.0f}/s)"
        )


class Backfill:
    """Sends the files of ``options`` through ``config``'s pipeline, chunk by confirmed chunk."""

    def __init__(
        self,
        config: Config,
        options: SendOptions,
        progress: ProgressLine | None = None,
        after_record: AfterRecord | None = None,
    ) -> None:
        if options.transport is not None:
            config = only_transport(config, options.transport)
        self.options = options
        self.token = config.mixpanel.token
        self.progress = progress or ProgressLine()
        self.after_record = after_record
        self.tally = SendTally()
        # Checked before the checkpoint is loaded: an input read as a checkpoint would only
        # be reported as a bad checkpoint "to delete".
        refuse_shared_files(config, run_files(options))
        # Every FILE is checked before anything is sent: a pipe or a missing file met only
        # when its turn came would stop the run after the files before it were sent in full.
        # Not identified yet (see _send_file).
        for path in options.files:
            check_file(path)
        self.checkpoint = Checkpoint(options.checkpoint)
        self.delivery: ConfirmedDelivery[int] = ConfirmedDelivery(config)
        self.rejected = RejectedFile(options.rejected_file) if options.rejected_file else None
        self._held: list[Rejection] = []
        """The current chunk's invalid records, kept once the chunk is confirmed: written
        before, they would be written again by the run that resumes before the chunk."""

    def run(self) -> SendTally:
        """Send every file; raises ``CommandError`` when something was left undone."""
        interrupted = False
        try:
            for path in self.options.files:
                self._send_file(path)
        except BaseException:
            interrupted = True
            raise
        finally:
            closing = self.delivery.close(CLOSE_TIMEOUT if interrupted else None)
            # Accepted while the transports closed (a run stopped mid-chunk): Mixpanel has
            # them, so the summary counts them; the checkpoint stays before them all the same.
            self.tally.accepted += closing.accepted
            if self.rejected is not None:
                self.rejected.close()
        return self.tally

    def _send_file(self, path: Path) -> None:
        # Identified as it is opened, not at start: a file still being written while the
        # files before it were sent would be checkpointed under what it held at start, and
        # a rerun would send it again whole, under new derived $insert_ids.
        identity = file_identity(path)
        self.tally.files += 1
        if self.checkpoint.complete(identity):
            self.tally.skipped += self.checkpoint.confirmed(identity)
            self.progress.say(f"{path}: confirmed by an earlier run; skipped")
            return
        confirmed = first = self.checkpoint.confirmed(identity)
        self.tally.skipped += confirmed
        with RecordFile(path) as source:
            self.progress.start(str(path), source.size)
            index = confirmed
            records = source.records(skip=confirmed)
            while True:
                try:
                    record = next(records)
                except StopIteration:
                    break
                except InputError as error:
                    self._stop_at_unreadable(path, identity, confirmed, index, error)
                try:
                    self._send_record(path, identity, index, record)
                except SUBMIT_REFUSALS as error:
                    self.tally.records -= 1  # not sent
                    # What came before it is delivered and checkpointed first: once the
                    # plugin or route is fixed, the rerun resumes at this record and sends
                    # none of them again (a profile's $add would be applied twice).
                    if index > confirmed:
                        self._confirm(path, identity, confirmed, index)
                    if self.options.checkpoint is not None:
                        done = "confirmed: run the same command again to resume at it"
                    else:
                        done = f"delivered, but {WITHOUT_CHECKPOINT}"
                    raise CommandError(
                        f"stopped at record {index} of {path} (counted from 0), "
                        f"{not_sent(error)}; the records before it are {done}"
                    ) from error
                index += 1
                self.progress.update(index - first, source.bytes_read)
                if self.after_record is not None:
                    self.after_record(path, index - 1)
                if index - confirmed >= self.options.batch_size:
                    self._confirm(path, identity, confirmed, index)
                    confirmed = index
            self._confirm(path, identity, confirmed, index, complete=True)
        self.progress.end()

    def _stop_at_unreadable(
        self, path: Path, identity: str, confirmed: int, index: int, error: InputError
    ) -> NoReturn:
        """Settle the records read before a read error at record ``index``, then raise.

        Settled as before a refused record (R71 F3): raised mid-chunk, the error let the
        transports' close deliver the records read so far while the checkpoint stayed
        before them, so every rerun met the same cut and sent them again (a profile's $add
        applied once more each time).
        """
        if index > confirmed:
            self._confirm(path, identity, confirmed, index)
        if self.options.checkpoint is not None:
            # The whole file, fetched again, is another file to the checkpoint (known by its
            # content): sent as it is, its records before the cut would go out again.
            done = (
                "sent and confirmed (a rerun of this file sends none of them again; the "
                f"whole file is another file: send only its records from {index} on)"
            )
        else:
            done = f"sent, but {WITHOUT_CHECKPOINT}"
        raise InputError(
            f"{error}; stopped at record {index} of {path} (counted from 0): nothing from "
            f"there on can be read; the records before it are {done}"
        ) from error

    def _send_record(self, path: Path, identity: str, index: int, record: object) -> None:
        self.tally.records += 1
        if isinstance(record, BadRecord):
            rejection = Rejection("read", "invalid", record.reason, record.text, enriched=False)
            self._hold(rejection, path, index)
            return
        try:
            message = build_message(record, self.options.endpoint, (identity, index), self.token)
            self.delivery.submit(message, index)
        except ValidationError as error:
            endpoint = self.options.endpoint
            if endpoint is None and isinstance(record, dict):
                endpoint = infer_endpoint(record)
            reason, field = str(error), problem_field(error)
            # As read: a replay of the line runs the enrichers (redaction) on it.
            rejection = Rejection(
                "validation", "invalid", reason, record, endpoint, field, enriched=False
            )
            self._hold(rejection, path, index)

    def _confirm(
        self, path: Path, identity: str, start: int, end: int, *, complete: bool = False
    ) -> None:
        outcome = self.delivery.confirm()
        self.tally.accepted += outcome.accepted
        held, self._held = self._held, []
        if not outcome.delivered_or_settled:
            # The checkpoint stays before the chunk: the rerun meets its rejections again.
            raise CommandError(_undelivered(path, start, outcome, self.options.checkpoint))
        held += [Rejection.from_report(r.report, str(path), r.item) for r in outcome.rejected]
        # From the first rejection written to the checkpoint's move, Ctrl-C and SIGTERM wait
        # (R71 F2): stopped in between, the run wrote rejections (every WRITE_EVERY bytes)
        # that the rerun, resuming before the chunk, wrote again.
        with interrupts_held():
            for rejection in sorted(held, key=_in_file_order):
                self._keep(rejection)
            if self.rejected is not None:
                self.rejected.sync()
            if self.tally.rejected and self.rejected is None:
                # A checkpoint past records nobody kept would lose them: the rerun with
                # --rejected-file that the error asks for must meet them again.
                raise CommandError(
                    f"{self.tally.rejected} record(s) were rejected or invalid and not kept "
                    f"(give --rejected-file to keep them); first: {self.tally.first_rejection}; "
                    f"stopped at the chunk of {path} from record {start}: run again with "
                    "--rejected-file (with --checkpoint, it resumes there)"
                )
            self.checkpoint.advance(identity, path, end, complete=complete)

    def _hold(self, rejection: Rejection, path: Path, index: int) -> None:
        """Add ``rejection`` of record ``index`` of ``path`` to the current chunk's."""
        self._held.append(attrs.evolve(rejection, source=str(path), index=index))

    def _keep(self, rejection: Rejection) -> None:
        """Count a rejection of a confirmed chunk, and write it (or show it)."""
        self.tally.rejected += 1
        if self.tally.first_rejection is None:
            self.tally.first_rejection = rejection.describe()
        if self.rejected is not None:
            self.rejected.write(rejection)
        elif self.tally.rejected <= SHOWN_REJECTIONS:
            self.progress.say(f"rejected: {rejection.describe()}")


def run_files(options: SendOptions) -> list[RunFile]:
    """The paths of the command line, with what the run does to each (see ``paths``)."""
    files = [read("a FILE", path) for path in options.files]
    if options.rejected_file is not None:
        files.append(
            written("--rejected-file", options.rejected_file, "appended to with rejected records")
        )
    if options.checkpoint is not None:
        files.append(written("--checkpoint", options.checkpoint, "replaced whole after each chunk"))
    return files


def _in_file_order(rejection: Rejection) -> tuple[bool, int]:
    """Rejections of a chunk by their record's index (those without one last)."""
    return rejection.index is None, rejection.index or 0


WITHOUT_CHECKPOINT = (
    "without --checkpoint a rerun sends every record again (events are deduplicated by "
    "$insert_id; profile updates such as $add would be applied again): give --checkpoint to "
    "resume where a run stopped"
)
"""What a stop says of a run without ``--checkpoint``: nothing remembers how far it got."""


def _undelivered(
    path: Path, start: int, outcome: ChunkOutcome[int], checkpoint: Path | None
) -> str:
    count = len(outcome.failed) + outcome.undelivered
    first = (
        outcome.failed[0].report.reason if outcome.failed else "still queued when flushing stopped"
    )
    said = f"{count} record(s) of {path} were not delivered (first: {first}); "
    if checkpoint is not None:
        return (
            f"{said}records before {start} are confirmed: run the same command again to "
            "resume from there"
        )
    return f"{said}records before {start} were delivered, but {WITHOUT_CHECKPOINT}"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "send",
        help="send JSON/NDJSON files of events or profile updates (backfills into /import)",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="JSON (array or object), NDJSON, or either gzipped",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--transport",
        metavar="NAME",
        help="send everything through this configured transport (default: the configured routes)",
    )
    parser.add_argument(
        "--endpoint",
        choices=ENDPOINTS,
        help="send every record to this endpoint (default: from each record's "
        "shape: events to import, $distinct_id to engage, $group_key to groups)",
    )
    parser.add_argument(
        "--rejected-file",
        type=Path,
        metavar="PATH",
        help="append invalid and rejected records here as JSON lines with the reason and field",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="remember how far delivery was confirmed; a rerun resumes there",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="records per confirmed chunk: the transports are "
        "flushed and the checkpoint advanced every N records "
        "(default: %(default)s)",
    )
    parser.set_defaults(handler=run)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="the TOML file (default: $MIXPANEL_CORE_CONFIG, else ./mixpanel.toml)",
    )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    options = SendOptions(
        files=tuple(args.files),
        endpoint=args.endpoint,
        transport=args.transport,
        rejected_file=args.rejected_file,
        checkpoint=args.checkpoint,
        batch_size=args.batch_size,
    )
    progress = ProgressLine()
    backfill = Backfill(load_config(args.config), options, progress)
    with stop_on_sigterm():
        try:
            backfill.run()
        finally:
            progress.say(backfill.tally.summary(backfill.rejected))
    return 0


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then raise ``KeyboardInterrupt``.

    For the few steps that settle a confirmed chunk (its rejections written, the rejected file
    synced, the checkpoint moved): they take as long as the writing, never a network wait. In
    a thread other than the main one (no signal handlers there) the block runs as it is.
    """
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in wanted}
    main_thread = threading.current_thread() is threading.main_thread()
    if not main_thread or any(handler is None for handler in previous.values()):
        yield  # a handler set outside Python cannot be put back
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    for signum in wanted:
        signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        raise KeyboardInterrupt


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C: transports are closed and the summary printed before exit."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
