"""Sending through the configured pipeline in chunks, and learning what became of each chunk.

``ConfirmedDelivery.submit`` sends a message through validation, enrichment and routing to the
transports; ``confirm`` flushes them and returns the chunk's outcome from the delivery reports
(observed through the ``mixpanel_delivered`` hook) and ``flush()``'s undelivered list. Only
after ``confirm`` may a command move a checkpoint or commit an offset past the chunk.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

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


@attrs.frozen
class ChunkOutcome:
    """What became of the messages submitted since the last ``confirm``."""

    accepted: int
    rejected: tuple[DeliveryReport, ...]
    """REJECTED by Mixpanel, or DROPPED by the pipeline as invalid: sending again won't help."""
    failed: tuple[DeliveryReport, ...]
    """FAILED after the retry budget, or DROPPED by a full queue: may be sent again."""
    undelivered: int
    """Still held by a transport when flushing stopped making progress."""

    @property
    def delivered_or_settled(self) -> bool:
        return not self.failed and not self.undelivered


class ReportCollector:
    """A plugin object that keeps the reports of the current chunk (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted = 0
        self._lost: list[DeliveryReport] = []

    @hookimpl
    def mixpanel_delivered(self, report: DeliveryReport) -> None:
        with self._lock:
            if report.status is DeliveryStatus.ACCEPTED:
                self._accepted += 1
            else:
                self._lost.append(report)

    @property
    def settled(self) -> int:
        with self._lock:
            return self._accepted + len(self._lost)

    def take(self) -> tuple[int, list[DeliveryReport]]:
        """The counts so far, and start over."""
        with self._lock:
            taken = self._accepted, self._lost
            self._accepted, self._lost = 0, []
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


def only_transport(config: Config, name: str) -> Config:
    """``config`` with every message routed to transport ``name`` (``--transport``)."""
    if name not in config.transports:
        configured = ", ".join(config.transports) or "none"
        raise ConfigError(f"--transport: no transport named {name!r}; configured: {configured}")
    return attrs.evolve(config, routes=(RouteConfig(transport=name),))


class ConfirmedDelivery:
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
        self._dry_run = dry_run

    def submit(self, message: Message) -> None:
        """Send ``message``; its outcome arrives in the next ``confirm``.

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

    def confirm(self) -> ChunkOutcome:
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
        accepted, lost = self.collector.take()
        settled = accepted + len(lost)
        unreported = 0 if self._dry_run else max(self.submitted - settled - len(left), 0)
        self.submitted = 0
        rejected = tuple(r for r in lost if _final(r))
        failed = tuple(r for r in lost if not _final(r))
        return ChunkOutcome(accepted, rejected, failed, len(left) + unreported)

    def close(self, timeout: float | None = None) -> int:
        """Close the transports; returns how many messages they still held (after ``confirm``,
        none, unless the run was interrupted)."""
        return len(self.pipeline.close(timeout))
