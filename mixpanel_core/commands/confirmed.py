"""Sending through the configured pipeline in chunks, and learning what became of each chunk.

``ConfirmedDelivery.submit`` sends a message through validation, enrichment and routing to the
transports; ``confirm`` flushes them and returns the chunk's outcome from the delivery reports
(observed through the ``mixpanel_delivered`` hook) and ``flush()``'s undelivered list. Only
after ``confirm`` may a command move a checkpoint or commit an offset past the chunk.

The outcome counts messages, not reports: each report is traced back to the item (a record's
index, a dead letter) its message was submitted for (``SentMessages``), so a message routed to
two transports counts once, accepted only when every report of it says so, and only once no
transport still holds it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

import attrs

from mixpanel_core.config import Config, RouteConfig
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import (
    AuthenticationError,
    ConfigError,
    DeliveryError,
    NotYetDeliveredError,
    PartialSendError,
    PluginError,
    TransportError,
)
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.hookspecs import hookimpl
from mixpanel_core.messages import Message
from mixpanel_core.pipeline import Pipeline

Item = TypeVar("Item")
"""What a command submits a message for, and gets back with its report: an index, a letter."""


@attrs.frozen
class Lost(Generic[Item]):
    """A message that was not delivered: the report saying why, and the item it was sent for
    (``None`` when the report could not be traced back to one)."""

    report: DeliveryReport
    item: Item | None


@attrs.frozen
class ChunkOutcome(Generic[Item]):
    """What became of the messages submitted since the last ``confirm``, each counted once: by
    the first outcome after every transport it was routed to is done with it."""

    accepted: int
    """Messages whose every report says ACCEPTED (one routed to two transports has two) and
    that no transport still holds."""
    rejected: tuple[Lost[Item], ...]
    """REJECTED by Mixpanel: sending again won't help (invalid records raise in ``submit``)."""
    failed: tuple[Lost[Item], ...]
    """FAILED after the retry budget, or DROPPED by a full queue: may be sent again."""
    undelivered: int
    """Still held by a transport when flushing stopped making progress."""

    @property
    def delivered_or_settled(self) -> bool:
        return not self.failed and not self.undelivered


class SentMessages(Generic[Item]):
    """The items of one chunk by the messages sent for them, to trace a report back.

    By the message itself: a report usually carries the very object sent. Else by what a copy
    of it carries (decoded in another process, or made by an enricher): its ``$insert_id``, or,
    for a message without one (a profile update), its endpoint and JSON. Each item once per
    transport, in order, every way: two items may share an ``$insert_id`` or a JSON (a record
    twice in a file, or dead-lettered twice), or even one message object (a fix-up plugin that
    hands back the same object for equal records). Once per *transport*: a message routed to
    two transports is reported by each, and both reports are its own.
    """

    def __init__(self) -> None:
        self._items: list[Item] = []
        # Kept while the chunk lasts, so an id() stays its own message's.
        self._messages: list[Message] = []
        self._by_id: dict[int, int] = {}
        """id(message) -> its first position: one dict entry a message, the common case."""
        self._shared: dict[int, list[int]] = {}
        """id(message) -> every position of an object sent for more than one item."""
        self._by_copy: dict[object, list[int]] = {}
        """``_copy_key`` -> positions, built only once a report carries a copy (``_copies``):
        the key costs more than the whole common case."""
        self._indexed = 0
        """Positions in ``_by_copy`` so far."""
        self._traced: dict[str, set[int]] = {}
        """Per transport, the positions a report was traced to already."""
        self._cursors: dict[tuple[str, object], int] = {}
        """Per transport and queue, where the untraced positions start: traced ones before it
        are skipped once, not at every look (many items may share one message object)."""

    def __len__(self) -> int:
        return len(self._items)

    def add(self, message: Message, item: Item) -> None:
        position = len(self._items)
        self._items.append(item)
        self._messages.append(message)
        first = self._by_id.setdefault(id(message), position)
        if first != position:
            self._shared.setdefault(id(message), [first]).append(position)

    def item(self, position: int) -> Item:
        return self._items[position]

    def item_of(self, message: Message, transport: str = "") -> Item | None:
        """The item of the first position ``position_of`` finds, or ``None``."""
        position = self.position_of(message, transport)
        return None if position is None else self._items[position]

    def position_of(self, message: Message, transport: str = "") -> int | None:
        """Where the message a report of ``transport`` carries was sent, or ``None``."""
        traced = self._traced.get(transport)
        if traced is None:
            traced = self._traced[transport] = set()
        position = self._by_id.get(id(message))
        if position is not None:
            if position not in traced:
                traced.add(position)
                return position
            shared = self._shared.get(id(message))
            if shared is not None:
                position = self._first_untraced(transport, traced, id(message), shared)
                if position is not None:
                    return position
        key = _copy_key(message)
        return self._first_untraced(transport, traced, key, self._copies().get(key, []))

    def positions_of(self, messages: Sequence[Message]) -> set[int]:
        """Every position each of ``messages`` may have been sent at, tracing none."""
        found: set[int] = set()
        for message in messages:
            position = self._by_id.get(id(message))
            if position is not None:
                found.update(self._shared.get(id(message), [position]))
            else:
                found.update(self._copies().get(_copy_key(message), []))
        return found

    def _first_untraced(
        self, transport: str, traced: set[int], key: object, queue: list[int]
    ) -> int | None:
        cursor = (transport, key)
        at = self._cursors.get(cursor, 0)
        while at < len(queue) and queue[at] in traced:
            at += 1
        self._cursors[cursor] = at
        if at == len(queue):
            return None
        traced.add(queue[at])
        return queue[at]

    def _copies(self) -> dict[object, list[int]]:
        """Positions by ``_copy_key``, brought up to the positions added since last asked."""
        for position in range(self._indexed, len(self._messages)):
            key = _copy_key(self._messages[position])
            self._by_copy.setdefault(key, []).append(position)
        self._indexed = len(self._messages)
        return self._by_copy


def _copy_key(message: Message) -> object:
    """What a copy of ``message`` still carries: its ``$insert_id``, else (a profile update)
    its endpoint and JSON, which a copy decoded from that JSON keeps byte for byte."""
    insert_id = message.insert_id
    return insert_id if insert_id is not None else (message.endpoint, message.json())


class ReportCollector:
    """A plugin object that keeps the reports of the current chunk (thread-safe), each with
    the thread it was made on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: list[tuple[int, DeliveryReport]] = []

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        made_on = threading.get_ident()
        with self._lock:
            self._reports.append((made_on, report))

    @property
    def settled(self) -> int:
        with self._lock:
            return len(self._reports)

    def made_here(self, since: int) -> list[DeliveryReport]:
        """The reports this thread made after the first ``since``, in order."""
        here = threading.get_ident()
        with self._lock:
            return [report for made_on, report in self._reports[since:] if made_on == here]

    def forget(self, since: int, reports: Sequence[DeliveryReport]) -> None:
        """Drop ``reports`` (these very objects), kept after the first ``since``."""
        dropped = {id(report) for report in reports}
        with self._lock:
            self._reports[since:] = [
                (made_on, report)
                for made_on, report in self._reports[since:]
                if id(report) not in dropped
            ]

    def take(self) -> list[DeliveryReport]:
        """The reports so far, and start over."""
        with self._lock:
            taken, self._reports = self._reports, []
        return [report for _, report in taken]


class _Discard:
    """A transport that takes messages and reports nothing (``--dry-run``)."""

    def send(self, message: Message) -> None:
        pass

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        return ()


def _reported_refusal(error: BaseException) -> bool:
    """Whether a transport's refusal is the report it made of the message (not a stop).

    Only one that carries its reports (as ``http``'s do) counts: beside a transport that
    accepted the message, one refusing it without a report would go unnoticed (the message
    counts as reported by either), and the record would be taken for delivered.
    """
    return (
        isinstance(error, DeliveryError)
        and not isinstance(error, AuthenticationError)
        and bool(error.reports)
    )


def _final(report: DeliveryReport) -> bool:
    """Whether sending the message again cannot change the outcome."""
    return report.status is DeliveryStatus.REJECTED  # a full queue's drop is not final


def _worst(lost: Sequence[DeliveryReport]) -> DeliveryReport:
    """Of a message's reports that are not ACCEPTED, the one that decides its fate: one that
    may change if sent again (failed), else one that will not (rejected)."""
    return next((r for r in lost if not _final(r)), lost[0])


class _Chunk(Generic[Item]):
    """What was submitted since the last settled outcome, and what its reports said so far.

    Kept until no transport holds any of it: a message counts once its transports are done
    with it, and a report that comes later (a transport delivering while it closes) is still
    traced to the message, which is not counted again.
    """

    def __init__(self) -> None:
        self.sent: SentMessages[Item] = SentMessages()
        self.submitted = 0
        self.reported: set[int] = set()
        """Positions some report was traced to."""
        self.lost: dict[int, list[DeliveryReport]] = {}
        """Per position, its reports that are not ACCEPTED (most messages have none)."""
        self.counted: set[int] = set()
        """Positions an outcome counted already."""
        self.untraced = 0
        """Reports traced to no position, each counted as a message of its own."""
        self.uncounted: set[int] = set()
        """Positions of messages refused by raising that some transports took: waited for,
        never counted (the command names the record as not sent)."""


def only_transport(config: Config, name: str) -> Config:
    """``config`` with every message routed to transport ``name`` (``--transport``)."""
    if name not in config.transports:
        configured = ", ".join(config.transports) or "none"
        raise ConfigError(f"--transport: no transport named {name!r}; configured: {configured}")
    return attrs.evolve(config, routes=(RouteConfig(transport=name),))


KEEPS_DEAD_LETTERS = frozenset({"buffered_http"})
"""The built-in transport types whose ``dead_letter_path`` keeps what failed (a third party's
option of that name may mean anything, and may be required)."""


def without_dead_letter_files(config: Config) -> Config:
    """``config`` with no built-in transport keeping a dead-letter file of its own.

    A command keeps what fails again itself (in ``--rejected-file``, or it exits 1 saying it
    was not kept, and it is still in the input). A transport's dead-letter file would keep the
    same records a second time, and replaying both files later would apply a profile ``$add``
    twice.
    """
    transports = {
        name: attrs.evolve(
            transport,
            options=FrozenDict(
                {k: v for k, v in transport.options.items() if k != "dead_letter_path"}
            ),
        )
        if transport.type in KEEPS_DEAD_LETTERS
        else transport
        for name, transport in config.transports.items()
    }
    return attrs.evolve(config, transports=FrozenDict(transports))


SUBMIT_REFUSALS = (PluginError, ConfigError, TransportError)
"""What ``ConfirmedDelivery.submit`` raises for a message it did not send (or not to every
transport it was routed to): a plugin raised on it; routing found it no transport (a router's
``ConfigError``, a route to no or an unknown transport, ``[[routes]]`` that take none, a
transport that cannot be built); its transport refused it (a full queue, a broken producer).
A command stops at that record, after confirming the ones before it (see ``not_sent``)."""


def not_sent(error: Exception) -> str:
    """How a command's stop names what became of the record ``error`` was raised for."""
    if isinstance(error, PartialSendError):
        said = f"not sent to every transport: {error}"
        if error.taken_by:
            # Nothing can send a record to some of its transports only: the rerun that
            # resumes at it sends it to them all.
            said += (
                f" (a rerun sends it again to {', '.join(error.taken_by)} too: an event is "
                "counted once by its $insert_id, a profile update such as $add is applied again)"
            )
        return said
    return f"not sent: {error}"


class ConfirmedDelivery(Generic[Item]):
    """The configured pipeline, with a collector of reports and a flush that confirms."""

    def __init__(self, config: Config, *, dry_run: bool = False) -> None:
        self.collector = ReportCollector()
        # Invalid records are the command's to keep (its rejected file, as read: a replay of
        # the line enriches them), whatever on_invalid says for applications.
        config = attrs.evolve(
            without_dead_letter_files(config),
            pipeline=attrs.evolve(config.pipeline, on_invalid="raise"),
        )
        transports: Mapping[str, object] | None = None
        if dry_run:
            # Same names, so routes still resolve; nothing leaves the process.
            transports = {name: _Discard() for name in config.transports}
        self.pipeline = Pipeline.from_config(
            config, transports, extra_plugins=[("mixpanel-core-command", self.collector)]
        )
        try:
            self.pipeline.check_routing()  # before the first record, not at each
        except ConfigError as exc:
            raise ConfigError(f"{exc}; or give the command --transport NAME") from None
        self._chunk: _Chunk[Item] = _Chunk()
        self._dry_run = dry_run

    @property
    def submitted(self) -> int:
        """Messages submitted that no outcome has settled yet."""
        return self._chunk.submitted

    def submit(self, message: Message, item: Item | None = None, *, enrich: bool = True) -> None:
        """Send ``message`` for ``item``; its outcome arrives in the next ``confirm``.
        ``enrich``: whether the pipeline's enrichers run on it (see ``Pipeline.submit``).

        Raises ``ValidationError`` when it is invalid under ``on_invalid = "raise"``, and
        ``AuthenticationError`` when Mixpanel refuses the credentials (nothing can succeed;
        inside a ``PartialSendError`` when the message went to several transports).
        """
        since = self.collector.settled
        self.pipeline.last_refused()  # an earlier record's refusal is not this one's
        try:
            self.pipeline.submit(message, enrich=enrich)
        except AuthenticationError:
            raise
        except DeliveryError:
            pass  # a synchronous transport: its report has reached the collector already
        except PartialSendError as exc:
            # Routed to several transports: when each refusal is a synchronous transport's
            # report, the message is counted like any other (the others took it and report
            # later). Raised on, one refused record stopped every rerun at itself.
            if not all(_reported_refusal(e) for e in exc.errors.values()):
                self._refused(since, message, item, exc.taken_by)
                raise
        except SUBMIT_REFUSALS:
            self._refused(since, message, item)
            raise
        # Counted once taken (a message refused by raising is the caller's to count): every
        # counted message must be reported or returned by flush before it is confirmed.
        self._chunk.submitted += 1
        if item is not None:
            self._chunk.sent.add(message, item)

    def _refused(
        self, since: int, message: Message, item: Item | None, taken_by: Sequence[str] = ()
    ) -> None:
        """Account for a message refused by raising: the caller's to count, not the outcome's.

        The reports made of it as it was refused (the pipeline's FAILED, its transport's
        DROPPED or FAILED) would count it again, as a failure traced to nothing, and leave the
        records before it unconfirmed. The transports that took it (``taken_by``) will report
        it: it joins the chunk, so their reports are traced to it, but counted by no outcome.
        """
        handed = self.pipeline.last_refused() or message
        made = [r for r in self.collector.made_here(since) if r.transport not in taken_by]
        # The pipeline's, and its transports' of the object they were handed (the enrichers'
        # copy). Not those of earlier messages a transport failed as it refused this one (a
        # kafka producer retired, a multiprocessing_queue batch with its sender dead).
        ours = [
            r
            for r in made
            if r.transport == "pipeline" or r.message is message or r.message is handed
        ]
        if not any(r.transport != "pipeline" for r in ours):
            # Reported as a copy (a multiprocessing_queue decodes the batch it cannot queue):
            # its last report with the same $insert_id or JSON is of it, made last.
            key = _copy_key(handed)
            copies = [r for r in made if r.message is not None and _copy_key(r.message) == key]
            ours += copies[-1:]
        self.collector.forget(since, ours)
        if taken_by and item is not None:
            self._chunk.uncounted.add(len(self._chunk.sent))
            self._chunk.submitted += 1
            self._chunk.sent.add(message, item)

    def confirm(self) -> ChunkOutcome[Item]:
        """Flush every transport until all submitted messages are settled or progress stops.

        A message counts as delivered only once a report says so. One that was submitted but
        neither reported nor returned by ``flush`` (a transport lost it, or raised
        ``TransportError`` because it could not tell) counts as undelivered.
        """
        left: list[Message] = []
        while True:
            settled_before = self.collector.settled
            try:
                left = self.pipeline.flush()
            except NotYetDeliveredError:
                # Still moving in another process (a multiprocessing_queue sender), which
                # reports them as they settle: flushed again while that brings new reports.
                if self.collector.settled == settled_before:
                    left = []
                    break
                continue
            except TransportError:
                # The transport cannot say what became of some messages: the count below
                # treats every unreported one as undelivered.
                left = []
                break
            # A flush bounded by the transport's timeout may end with messages still queued
            # but moving; only a whole flush without a single new report means stuck.
            if not left or self.collector.settled == settled_before:
                break
        return self._outcome(left)

    def close(self, timeout: float | None = None) -> ChunkOutcome[Item]:
        """Close the transports; returns the outcome of what no earlier outcome counted
        (nothing, unless the run was interrupted or its last ``confirm`` left messages held):
        a transport closing delivers what it still held, and those reports count as much as
        any, each message still once."""
        return self._outcome(self.pipeline.close(timeout))

    def _outcome(self, left: Sequence[Message]) -> ChunkOutcome[Item]:
        """The reports so far, one verdict a message that no transport holds (``left``) and
        no outcome counted; the next chunk starts once nothing is held or unreported."""
        chunk = self._chunk
        untraced: list[DeliveryReport] = []
        for report in self.collector.take():
            message = report.message
            position = (
                None if message is None else chunk.sent.position_of(message, report.transport)
            )
            if position is None:
                untraced.append(report)
                continue
            chunk.reported.add(position)
            if report.status is not DeliveryStatus.ACCEPTED:
                chunk.lost.setdefault(position, []).append(report)
        # Held by one transport, a message is not done whatever the others said: counted by
        # the outcome after the one that holds it reports it (close() at the latest).
        held = chunk.sent.positions_of(left) if left else set()
        due = chunk.reported - chunk.counted - held
        chunk.counted |= due
        due -= chunk.uncounted
        rejected: list[Lost[Item]] = []
        failed: list[Lost[Item]] = []
        for position in sorted(due.intersection(chunk.lost)):
            worst = _worst(chunk.lost[position])
            (rejected if _final(worst) else failed).append(Lost(worst, chunk.sent.item(position)))
        accepted = len(due) - len(rejected) - len(failed)
        for report in untraced:
            if report.status is DeliveryStatus.ACCEPTED:
                accepted += 1
            else:
                (rejected if _final(report) else failed).append(Lost(report, None))
        chunk.untraced += len(untraced)
        unreported = 0
        if not self._dry_run:
            reported = len(chunk.reported) + chunk.untraced
            unreported = max(chunk.submitted - reported - len(left), 0)
        if not left and not unreported:
            self._chunk = _Chunk()
        return ChunkOutcome(accepted, tuple(rejected), tuple(failed), len(left) + unreported)
