"""Sending through the configured pipeline in chunks, and learning what became of each chunk.

``ConfirmedDelivery.submit`` sends a message through validation, enrichment and routing to the
transports; ``confirm`` flushes them and returns the chunk's outcome from the delivery reports
(observed through the ``mixpanel_delivered`` hook) and ``flush()``'s undelivered list. Only
after ``confirm`` may a command move a checkpoint or commit an offset past the chunk.

The outcome counts messages, not reports: each report is traced back to the item (a record's
index, a dead letter) its message was submitted for (``SentMessages``), so a message routed to
two transports counts once, accepted only when every report of it says so.
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
    TransportError,
)
from mixpanel_core.hookspecs import hookimpl
from mixpanel_core.messages import Message
from mixpanel_core.pipeline import Pipeline

PIPELINE_REPORTER = "pipeline"
"""The ``transport`` of the reports the pipeline itself makes (``on_invalid = "drop"``)."""

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
    """What became of the messages submitted since the last ``confirm``, each counted once."""

    accepted: int
    """Messages whose every report says ACCEPTED (one routed to two transports has two)."""
    rejected: tuple[Lost[Item], ...]
    """REJECTED by Mixpanel, or DROPPED by the pipeline as invalid: sending again won't help."""
    failed: tuple[Lost[Item], ...]
    """FAILED after the retry budget, or DROPPED by a full queue: may be sent again."""
    undelivered: int
    """Still held by a transport when flushing stopped making progress."""

    @property
    def delivered_or_settled(self) -> bool:
        return not self.failed and not self.undelivered


class SentMessages(Generic[Item]):
    """The items of one chunk by the messages sent for them, to trace a report back.

    By the message itself: a report carries the message its transport was given, the one sent
    unless an enricher changed it. Then by ``$insert_id``. Each item once per transport, in
    order, both ways: two items may share an ``$insert_id`` (a record twice in a file, or
    dead-lettered twice), or even one message object (a fix-up plugin that hands back the same
    object for equal records), and profile updates have no ``$insert_id``. Once per
    *transport*: a message routed to two transports is reported by each, and both reports are
    its own.
    """

    def __init__(self) -> None:
        self._items: list[Item] = []
        # Keyed by ("id", id(message)) or ("insert_id", $insert_id): positions in send order.
        # The messages are kept with them, so an id() stays its own while the chunk lasts.
        self._queues: dict[tuple[str, object], list[int]] = {}
        self._messages: list[Message] = []
        self._traced: set[tuple[str, int]] = set()
        """(transport, position) pairs a report was traced to already."""
        self._cursors: dict[tuple[str, str, object], int] = {}
        """Per transport and queue, where the untraced positions start: traced ones before it
        are skipped once, not at every look (many items may share one message object)."""

    def add(self, message: Message, item: Item) -> None:
        position = len(self._items)
        self._items.append(item)
        self._messages.append(message)
        self._queues.setdefault(("id", id(message)), []).append(position)
        if message.insert_id is not None:
            self._queues.setdefault(("insert_id", message.insert_id), []).append(position)

    def item(self, position: int) -> Item:
        return self._items[position]

    def item_of(self, message: Message, transport: str = "") -> Item | None:
        """The item of the first position ``position_of`` finds, or ``None``."""
        position = self.position_of(message, transport)
        return None if position is None else self._items[position]

    def position_of(self, message: Message, transport: str = "") -> int | None:
        """Where the message a report of ``transport`` carries was sent, or ``None``."""
        keys: list[tuple[str, object]] = [("id", id(message))]
        if message.insert_id is not None:
            keys.append(("insert_id", message.insert_id))
        for key in keys:
            position = self._first_untraced(transport, key)
            if position is not None:
                self._traced.add((transport, position))
                return position
        return None

    def _first_untraced(self, transport: str, key: tuple[str, object]) -> int | None:
        queue = self._queues.get(key, [])
        cursor = (transport, *key)
        at = self._cursors.get(cursor, 0)
        while at < len(queue) and (transport, queue[at]) in self._traced:
            at += 1
        self._cursors[cursor] = at
        return queue[at] if at < len(queue) else None


class ReportCollector:
    """A plugin object that keeps the reports of the current chunk (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: list[DeliveryReport] = []

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        with self._lock:
            self._reports.append(report)

    @property
    def settled(self) -> int:
        with self._lock:
            return len(self._reports)

    def take(self) -> list[DeliveryReport]:
        """The reports so far, and start over."""
        with self._lock:
            taken, self._reports = self._reports, []
            return taken


class _Discard:
    """A transport that takes messages and reports nothing (``--dry-run``)."""

    def send(self, message: Message) -> None:
        pass

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        return ()


def _final(report: DeliveryReport) -> bool:
    """Whether sending the message again cannot change the outcome."""
    if report.status is DeliveryStatus.DROPPED:
        return report.transport == PIPELINE_REPORTER  # invalid; a full queue's drop is not final
    return report.status is DeliveryStatus.REJECTED


def _by_message(
    reports: Sequence[DeliveryReport], sent: SentMessages[Item]
) -> list[tuple[Item | None, list[DeliveryReport]]]:
    """The reports grouped by the message they are about, in send order; a report that cannot
    be traced (no message, or one neither known nor carrying a known ``$insert_id``) is a
    message of its own."""
    traced: dict[int, list[DeliveryReport]] = {}
    untraced: list[tuple[Item | None, list[DeliveryReport]]] = []
    for report in reports:
        message = report.message
        position = sent.position_of(message, report.transport) if message is not None else None
        if position is None:
            untraced.append((None, [report]))
        else:
            traced.setdefault(position, []).append(report)
    ordered = [(sent.item(position), traced[position]) for position in sorted(traced)]
    return [*ordered, *untraced]


def _worst(reports: Sequence[DeliveryReport]) -> DeliveryReport | None:
    """The report that decides a message's fate: one that may change if sent again (failed),
    else one that will not (rejected), else ``None`` (every transport accepted it)."""
    lost = [r for r in reports if r.status is not DeliveryStatus.ACCEPTED]
    return next((r for r in lost if not _final(r)), lost[0] if lost else None)


def only_transport(config: Config, name: str) -> Config:
    """``config`` with every message routed to transport ``name`` (``--transport``)."""
    if name not in config.transports:
        configured = ", ".join(config.transports) or "none"
        raise ConfigError(f"--transport: no transport named {name!r}; configured: {configured}")
    return attrs.evolve(config, routes=(RouteConfig(transport=name),))


class ConfirmedDelivery(Generic[Item]):
    """The configured pipeline, with a collector of reports and a flush that confirms."""

    def __init__(self, config: Config, *, dry_run: bool = False) -> None:
        self.collector = ReportCollector()
        transports: Mapping[str, object] | None = None
        if dry_run:
            # Same names, so routes still resolve; nothing leaves the process.
            transports = {name: _Discard() for name in config.transports}
        self.pipeline = Pipeline.from_config(
            config, transports, extra_plugins=[("mixpanel-core-command", self.collector)]
        )
        self.submitted = 0
        self._sent: SentMessages[Item] = SentMessages()
        self._dry_run = dry_run

    def submit(self, message: Message, item: Item | None = None) -> None:
        """Send ``message`` for ``item``; its outcome arrives in the next ``confirm``.

        Raises ``ValidationError`` when it is invalid under ``on_invalid = "raise"``, and
        ``AuthenticationError`` when Mixpanel refuses the credentials (nothing can succeed).
        """
        try:
            self.pipeline.submit(message)
        except AuthenticationError:
            raise
        except DeliveryError:
            pass  # a synchronous transport: its report has reached the collector already
        # Counted once taken (a message refused by raising is the caller's to count): every
        # counted message must be reported or returned by flush before it is confirmed.
        self.submitted += 1
        if item is not None:
            self._sent.add(message, item)

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
        """Close the transports; returns the outcome of what was submitted since the last
        ``confirm`` (nothing, unless the run was interrupted): a transport closing delivers
        what it still held, and those reports count as much as any."""
        return self._outcome(self.pipeline.close(timeout))

    def _outcome(self, left: Sequence[Message]) -> ChunkOutcome[Item]:
        """The reports so far, one verdict a message; and start the next chunk."""
        messages = _by_message(self.collector.take(), self._sent)
        accepted = 0
        rejected: list[Lost[Item]] = []
        failed: list[Lost[Item]] = []
        for item, reports in messages:
            worst = _worst(reports)
            if worst is None:
                accepted += 1
            else:
                (rejected if _final(worst) else failed).append(Lost(worst, item))
        unreported = 0 if self._dry_run else max(self.submitted - len(messages) - len(left), 0)
        self.submitted = 0
        self._sent = SentMessages()
        return ChunkOutcome(accepted, tuple(rejected), tuple(failed), len(left) + unreported)
