"""``mixpanel-core replay-dead-letters``: send dead letters again, optionally fixed up first.

Reads the forwarder's dead-letter topic (``--topic``) or a dead-letter file (``--file``: the
JSON lines the buffered transport writes, or the rejected file of ``send``), runs each record
through the ``--fix`` plugin, then through the configured pipeline to the configured transport.
What still cannot be delivered (invalid, rejected, or failed after the retry budget) goes to
``--rejected-file``. On a topic, offsets are committed for the replay's consumer group only
after a batch was delivered or written out; the command stops once it has caught up with the
end offsets seen at start. A file's replay resumes where it stopped with ``--checkpoint`` (the
checkpoint of ``send``, moved past each settled batch).

Exit codes (also in docs/commands.md): 0 when every dead letter was delivered or written to the
rejected file (or, with ``--dry-run``, would be sent or is reported); 1 when some could be
neither (no ``--rejected-file``; on a topic the batch is then not committed), or on any error;
130 when interrupted (nothing uncommitted is lost: the next replay reads it again).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from mixpanel_core.commands.checkpoint import Checkpoint, file_identity
from mixpanel_core.commands.confirmed import (
    SUBMIT_REFUSALS,
    ConfirmedDelivery,
    SentMessages,
    not_sent,
    only_transport,
)
from mixpanel_core.commands.dead_letter_sources import (
    DeadLetterTopic,
    Letter,
    letter_from_record,
    read_dead_letter_file,
)
from mixpanel_core.commands.errors import CommandError
from mixpanel_core.commands.fixup import FixUp, without_plugin
from mixpanel_core.commands.paths import RunFile, read, refuse_shared_files, written
from mixpanel_core.commands.progress import ProgressLine
from mixpanel_core.commands.records import problem_field
from mixpanel_core.commands.rejected import RejectedFile, Rejection
from mixpanel_core.commands.send import (
    add_config_argument,
    interrupts_held,
    positive_int,
    stop_on_sigterm,
)
from mixpanel_core.config import Config, load_config
from mixpanel_core.errors import ConfigError, ValidationError
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client
from mixpanel_core.kafka.options import client_options
from mixpanel_core.messages import Message

DEFAULT_GROUP_ID = "mixpanel-core-replay"
DEFAULT_BATCH_SIZE = 500
SHOWN_REJECTIONS = 10
CLOSE_TIMEOUT = 5.0

EPILOG = """\
examples:
  mixpanel-core replay-dead-letters --topic mixpanel-dead-letter --rejected-file still-bad.jsonl
  mixpanel-core replay-dead-letters --topic mixpanel-dead-letter --fix fix_times --dry-run
  mixpanel-core replay-dead-letters --file dead-letters.jsonl --fix fix_times
  mixpanel-core replay-dead-letters --file dead-letters.jsonl --checkpoint replay.checkpoint
  # (not while a configured transport's dead_letter_path: move the file aside first)
  mixpanel-core replay-dead-letters --file rejected.jsonl   # the rejected file of `send`

exit codes: 0 everything delivered or written to --rejected-file; 1 something was neither
(on a topic, that batch stays uncommitted), or an error; 130 interrupted.
"""


@attrs.frozen
class ReplayOptions:
    """Where the dead letters are, how to fix them, and where what still fails goes."""

    topic: str | None = None
    file: Path | None = None
    bootstrap_servers: str | None = None
    group_id: str = DEFAULT_GROUP_ID
    fix: str | None = None
    dry_run: bool = False
    rejected_file: Path | None = None
    transport: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    checkpoint: Path | None = None
    """With ``file``: where how far the replay of it was confirmed is kept (as ``send``'s)."""


@attrs.frozen
class SettledBatch:
    """What became of a batch: how many of its letters were sent, whether each of those was
    delivered or kept, and the error that stopped it at the next one (``SUBMIT_REFUSALS``)."""

    sent: int
    complete: bool
    refusal: Exception | None = None


@attrs.define
class ReplayTally:
    """Counts for the summary line."""

    read: int = 0
    accepted: int = 0
    rejected: int = 0
    passed: int = 0
    """With ``--dry-run``: records that passed the fix-up and the pipeline's checks."""
    skipped: int = 0
    """Dead letters of the file that the checkpoint says an earlier replay confirmed."""
    first_rejection: str | None = None
    started: float = attrs.field(factory=time.monotonic)

    def summary(self, options: ReplayOptions, rejected_file: RejectedFile | None) -> str:
        elapsed = time.monotonic() - self.started
        resumed = f", {self.skipped:,} confirmed before" if self.skipped else ""
        if options.dry_run:
            return (
                f"dry run: read {self.read:,} dead letters: {self.passed:,} would be sent, "
                f"{self.rejected:,} would still fail{resumed}; {elapsed:.1f}s"
            )
        kept = rejected_file.holding(self.rejected) if rejected_file else ""
        return (
            f"replayed {self.read:,} dead letters: {self.accepted:,} accepted, "
            f"{self.rejected:,} still failing{kept}{resumed}; {elapsed:.1f}s"
        )


class Replay:
    """Sends dead letters again through ``config``'s pipeline, batch by confirmed batch."""

    def __init__(
        self, config: Config, options: ReplayOptions, progress: ProgressLine | None = None
    ) -> None:
        if options.transport is not None:
            config = only_transport(config, options.transport)
        if options.checkpoint is not None and options.file is None:
            raise ConfigError(
                "--checkpoint: only with --file (a topic's replay resumes at the offsets "
                "committed for --group-id)"
            )
        # Refused with --dry-run too: dropping the flag must not turn it into an endless run.
        refuse_shared_files(config, run_files(options))
        # A dry run reads it (it checks what the rerun would send) and writes nothing.
        self.checkpoint = Checkpoint(options.checkpoint, read_only=options.dry_run)
        self.fix = FixUp(config, options.fix) if options.fix else None
        if options.fix:
            config = without_plugin(config, options.fix)
        self.config = config
        self.options = options
        self.token = config.mixpanel.token
        self.progress = progress or ProgressLine()
        self.tally = ReplayTally()
        self.delivery: ConfirmedDelivery[Letter] = ConfirmedDelivery(
            config, dry_run=options.dry_run
        )
        self.rejected: RejectedFile | None = None
        if options.rejected_file is not None and not options.dry_run:
            self.rejected = RejectedFile(options.rejected_file)
        self._unkept = 0
        self.reading = False
        """Whether the dead letters' file or topic was opened: the summary is said from then on
        (before, there is nothing to sum up: only the error is said)."""

    def run(self) -> ReplayTally:
        """Replay the file or the topic; raises ``CommandError`` when something was left undone."""
        interrupted = False
        try:
            if self.options.file is not None:
                self._replay_file(self.options.file)
            elif self.options.topic is not None:
                self._replay_topic(self.options.topic)
            else:
                raise ConfigError("replay-dead-letters: give --topic or --file")
        except BaseException:
            interrupted = True
            raise
        finally:
            closing = self.delivery.close(CLOSE_TIMEOUT if interrupted else None)
            # Accepted while the transports closed (a replay stopped mid-batch): Mixpanel has
            # them, so the summary counts them; their batch stays uncommitted all the same.
            self.tally.accepted += closing.accepted
            if self.rejected is not None:
                self.rejected.close()
        if self._unkept and not self.options.dry_run:
            resume = ""
            if self.options.checkpoint is not None:
                resume = "; the checkpoint stays before the batch of the first: rerun from there"
            raise CommandError(
                f"{self._unkept} dead letter(s) still fail and were not kept (give "
                f"--rejected-file to keep them); first: {self.tally.first_rejection}{resume}"
            )
        return self.tally

    def _replay_file(self, path: Path) -> None:
        # Known by its content, as send knows its files: moved or renamed, it keeps its place
        # in the checkpoint. A missing or unreadable file raises here.
        identity = file_identity(path)
        confirmed = self.tally.skipped = self.checkpoint.confirmed(identity)
        if self.checkpoint.complete(identity):
            self.reading = True
            self.progress.say(f"{path}: confirmed by an earlier replay; skipped")
            return
        self.progress.start(str(path), path.stat().st_size)
        batch: list[Letter] = []
        for letter in read_dead_letter_file(path, self.token, identity, skip=confirmed):
            self.reading = True
            batch.append(letter)
            if len(batch) >= self.options.batch_size:
                confirmed = self._replay_file_batch(batch, identity, path)
                batch = []
        self.reading = True  # an empty file was read too
        if batch:
            confirmed = self._replay_file_batch(batch, identity, path)
        self._confirm(identity, path, confirmed, complete=True)
        self.progress.end()

    def _replay_file_batch(self, batch: Sequence[Letter], identity: str, path: Path) -> int:
        """Replay ``batch`` of the file, and confirm in the checkpoint the letters it sent
        (up to one refused by raising): the index of the letter after them."""

        def confirm(settled: SettledBatch) -> None:
            self._confirm(identity, path, _end(batch, settled))

        settled = self._replay_batch(batch, confirm)
        self._stop_at_refusal(settled, batch)
        return _end(batch, settled)

    def _confirm(self, identity: str, path: Path, end: int, *, complete: bool = False) -> None:
        """Move the checkpoint to letter ``end`` of the file, unless a letter before it still
        fails unkept: the rerun with --rejected-file that the error asks for must meet it."""
        if not self._unkept:
            self.checkpoint.advance(identity, path, end, complete=complete)

    def _replay_topic(self, name: str) -> None:
        topic = DeadLetterTopic(self._consumer(), name)
        self.reading = True
        self.progress.start(name, 0)
        try:
            for records in topic.batches(self.options.batch_size):
                letters = [letter_from_record(record, self.token) for record in records]
                settled = self._replay_batch(letters)
                if not self.options.dry_run and not settled.complete:
                    raise CommandError(
                        f"{self._unkept} dead letter(s) of {name} still fail and "
                        "no --rejected-file keeps them; their batch was not committed"
                    )
                if not self.options.dry_run and settled.sent:
                    # Up to a letter refused by raising: the rerun starts at it.
                    topic.commit(records[: settled.sent])
                self._stop_at_refusal(settled, letters)
        finally:
            topic.close()
            self.progress.end()

    def _replay_batch(
        self, letters: Sequence[Letter], then: Callable[[SettledBatch], None] | None = None
    ) -> SettledBatch:
        """Send one batch, up to a letter refused by raising, and settle what was sent.

        Its rejections are written once it is settled: a batch left uncommitted (interrupted,
        or with letters still queued) is read again by the next replay, which writes them.
        ``then`` marks it done (a file's checkpoint): from its first rejection written to
        that, Ctrl-C and SIGTERM wait.
        """
        unkept_before = self._unkept
        held: list[tuple[Rejection, Letter | None]] = []
        sent = 0
        refusal = None
        for letter in letters:
            self.tally.read += 1
            try:
                refused = self._send(letter)
            except SUBMIT_REFUSALS as error:
                # The letters before it are settled (and, on a topic, committed) first: the
                # rerun, once the plugin or route is fixed, starts at this one and sends none
                # of them again (a profile's $add would be applied twice).
                refusal = error
                self.tally.read -= 1  # not replayed: the error names it
                break
            sent += 1
            if refused is not None:
                held.append((refused, letter))
            self.progress.update(self.tally.read, 0)
        outcome = self.delivery.confirm()
        self.tally.accepted += outcome.accepted
        if outcome.undelivered:
            raise CommandError(
                f"{outcome.undelivered} dead letter(s) were still queued when flushing stopped "
                "making progress; nothing of that batch was committed"
            )
        for lost in (*outcome.rejected, *outcome.failed):
            held.append((Rejection.from_report(lost.report), lost.item))
        # Held until the checkpoint moved (R71 F2): stopped in between, the replay wrote
        # rejections (every WRITE_EVERY bytes) that the rerun, reading the batch again, wrote
        # again. A topic's commit, a network wait, is not held: its rejections pending when
        # it is stopped are dropped by the rejected file's close instead.
        with interrupts_held() if then is not None else contextlib.nullcontext():
            for rejection, where in held:
                self._reject(rejection, where)
            if self.rejected is not None:
                self.rejected.sync()
            settled = SettledBatch(sent, self._unkept == unkept_before, refusal)
            if then is not None:
                then(settled)
        return settled

    def _stop_at_refusal(self, settled: SettledBatch, letters: Sequence[Letter]) -> None:
        """Raise ``CommandError`` naming the letter refused by raising, if one was."""
        refusal = settled.refusal
        if refusal is None:
            return
        letter = letters[settled.sent]
        if self.options.topic is not None:
            where = f"the dead letter at offset {letter.index} of {letter.source}"
            done = "committed"
        else:
            where = f"dead letter {letter.index} of {letter.source} (counted from 0)"
            done = f"delivered or kept ({self._rerun_of_the_file('at it')})"
        if self.options.dry_run:
            done = "checked; nothing was sent or committed"
        elif self._unkept:
            # Only a file gets here with some unkept (a topic batch stops before): the
            # error run() would have said is said here.
            done = (
                f"delivered, but {self._unkept} of them still fail and were not kept (give "
                f"--rejected-file to keep them); "
                f"{self._rerun_of_the_file('at the batch of the first')}"
            )
        raise CommandError(
            f"stopped at {where}, {not_sent(refusal)}; the dead letters before it are {done}"
        ) from refusal

    def _rerun_of_the_file(self, where: str) -> str:
        """What a rerun of the file does: resume ``where`` (with a checkpoint) or start over."""
        if self.options.checkpoint is not None:
            return f"the checkpoint holds the place: run the same command again to resume {where}"
        return "a rerun of the file sends them all again; give --checkpoint to resume instead"

    def _send(self, letter: Letter) -> Rejection | None:
        """Send ``letter`` (fixed up first); the rejection of one that cannot be sent."""
        content = letter.content
        if isinstance(content, Rejection):
            return content
        stage = "fix"
        try:
            message = self.fix.apply(content) if self.fix is not None else content
            stage = "validation"
            # A dead letter is the record as sent: the enrichers ran on it then (redaction
            # would hash its hashes), unless it was refused as read.
            self.delivery.submit(message, letter, enrich=not letter.enriched)
            if self.options.dry_run:
                self.tally.passed += 1
        except ValidationError as error:
            return Rejection(
                stage,
                "invalid",
                str(error),
                content.record,
                content.endpoint,
                problem_field(error),
                enriched=letter.enriched,
            )
        return None

    def _reject(self, rejection: Rejection, letter: Letter | None) -> None:
        if letter is not None:
            rejection = attrs.evolve(
                rejection,
                source=letter.source,
                index=letter.index,
                dead_letter=letter.dead_letter or rejection.dead_letter,
            )
        self.tally.rejected += 1
        if self.tally.first_rejection is None:
            self.tally.first_rejection = rejection.describe()
        if self.rejected is not None:
            self.rejected.write(rejection)
            return
        self._unkept += 1
        if self._unkept <= SHOWN_REJECTIONS:
            self.progress.say(f"still failing: {rejection.describe()}")

    def _consumer(self) -> Any:
        kafka = kafka_python()
        servers, consumer_options = self._kafka_settings()
        path = "forwarder.consumer"
        settings = {
            **client_options(consumer_options, kafka.KafkaConsumer.DEFAULT_CONFIG, path),
            "bootstrap_servers": servers,
            "group_id": self.options.group_id,
            "enable_auto_commit": False,
        }
        return build_client(
            kafka.KafkaConsumer, settings, path, consumer_options, "replay-dead-letters"
        )

    def _kafka_settings(self) -> tuple[str | list[str], dict[str, Any]]:
        """Bootstrap servers and consumer options: ``--bootstrap-servers``, else the forwarder's.

        The ``[forwarder] consumer`` table is reused either way (TLS, SASL for the same cluster).
        """
        table: Any = {}
        servers: str | Iterable[str] | None = self.options.bootstrap_servers
        if self.config.forwarder is not None:
            from mixpanel_core.forwarder.config import resolve

            setup = resolve(self.config)
            table = setup.forwarder.consumer
            servers = servers or setup.bootstrap_servers
        if servers is None:
            raise ConfigError(
                "--bootstrap-servers: required when the configuration has no [forwarder] table "
                f"to take them from ({self.config.source})"
            )
        return (servers if isinstance(servers, str) else list(servers)), dict(table)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay-dead-letters",
        help="send dead letters (topic or file) again, optionally through a fix-up plugin",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_argument(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--topic", help="the forwarder's dead-letter topic")
    source.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="a dead-letter file (JSON lines), or the rejected file of `send`",
    )
    parser.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT[,...]",
        help="Kafka brokers (default: those of the [forwarder] source transport)",
    )
    parser.add_argument(
        "--group-id",
        default=DEFAULT_GROUP_ID,
        help="consumer group whose committed offsets track the replay (default: %(default)s)",
    )
    parser.add_argument(
        "--fix",
        metavar="PLUGIN",
        help="run this plugin's validate and enrich hooks on each record first "
        "(options from [plugins.PLUGIN])",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="fix up and check, but send, write and commit nothing",
    )
    parser.add_argument(
        "--rejected-file",
        type=Path,
        metavar="PATH",
        help="append what still fails here as JSON lines with the reason",
    )
    parser.add_argument(
        "--transport",
        metavar="NAME",
        help="send through this configured transport (default: the routes)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="records per confirmed (and committed) batch (default: %(default)s)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="with --file: remember how far the replay was confirmed, to resume there",
    )
    parser.set_defaults(handler=run)


def run_files(options: ReplayOptions) -> list[RunFile]:
    """The paths of the command line, with what the run does to each (see ``paths``)."""
    files = []
    if options.file is not None:
        hint = "move it aside (mv) and replay the moved file"
        files.append(read("--file", options.file, hint))
    if options.rejected_file is not None:
        files.append(
            written("--rejected-file", options.rejected_file, "appended to with what still fails")
        )
    if options.checkpoint is not None:
        files.append(written("--checkpoint", options.checkpoint, "replaced whole after each batch"))
    return files


def run(args: argparse.Namespace) -> int:
    options = ReplayOptions(
        topic=args.topic,
        file=args.file,
        bootstrap_servers=args.bootstrap_servers,
        group_id=args.group_id,
        fix=args.fix,
        dry_run=args.dry_run,
        rejected_file=args.rejected_file,
        transport=args.transport,
        batch_size=args.batch_size,
        checkpoint=args.checkpoint,
    )
    progress = ProgressLine()
    replay = Replay(load_config(args.config), options, progress)
    with stop_on_sigterm():
        try:
            replay.run()
        finally:
            if replay.reading:
                progress.say(replay.tally.summary(options, replay.rejected))
    return 0


def _end(batch: Sequence[Letter], settled: SettledBatch) -> int:
    """The index of the letter after those of ``batch`` that ``settled`` sent."""
    return batch[settled.sent - 1].index + 1 if settled.sent else batch[0].index


class _SentLetters(SentMessages[Letter]):
    """``SentMessages`` asked for letters, under the name tests/commands/test_replay_tracing.py
    knows. The replay itself traces through its delivery (``submit(message, letter)``)."""

    def letter_of(self, message: Message) -> Letter | None:
        return self.item_of(message)
