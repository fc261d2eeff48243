"""The sender process: drains the queue into the inner transport, then closes it.

``run_sender(channel)`` is the process body. The transport starts it for you
(``start_sender = true``); with ``start_sender = false`` run it in a process you manage::

    process = multiprocessing.get_context("spawn").Process(
        target=run_sender, args=(transport.channel,)
    )
    process.start()
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import time

from mixpanel_core.dedicated_process import collect_cycles_rarely
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.errors import DeliveryError, MixpanelCoreError, ValidationError
from mixpanel_core.ingestion.encoding import message_in
from mixpanel_core.multiprocess.channel import STOP, QueueChannel
from mixpanel_core.multiprocess.frames import decode_line, records_by_endpoint, split_frame
from mixpanel_core.multiprocess.intake import Intake
from mixpanel_core.multiprocess.reports import ReportRelay
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.transport import RecordSink, Transport

logger = logging.getLogger(__name__)

DRAIN_QUIET_PERIOD = 0.1
"""When frames may still come after a stop request (some worker producers had not closed, or
the owner died), the sender exits once the queue stayed empty this long (seconds)."""

REPORT_MARGIN = 1.0
"""Seconds before the owner's deadline by which the sender has flushed or closed its inner
transport (at most a quarter of the time left), so that its answer (what it could not
deliver, and the FAILED reports) reaches the owner before the owner gives up on it."""


class _SenderPipeline(Pipeline):
    """Builds the inner transport by name; its reports go to the relay, not to plugins.

    Reports of accepted records are wanted only when the owner observes them (the relay
    then ships them); the relay counts the rest itself.
    """

    def __init__(self, channel: QueueChannel, relay: ReportRelay) -> None:
        config = channel.spec.config
        super().__init__((), config.transports, config)
        self._relay = relay
        self._forward = channel.options.forward_reports

    def report(self, report: DeliveryReport) -> None:
        self._relay.report(report)

    @property
    def observed(self) -> bool:
        return self._forward

    @property
    def reporter(self) -> Reporter:
        return self._relay.report  # failures are counted whether or not they are shipped


def run_sender(channel: QueueChannel) -> None:
    """Deliver every queued message through the inner transport until told to stop.

    Returns after the owner's stop request (or its death) once the queue is drained and the inner
    transport is closed, so everything taken was delivered or reported.
    """
    channel.sender_pid.value = os.getpid()
    collect_cycles_rarely()
    relay = ReportRelay(channel.reports, channel.options.forward_reports, channel.taken)
    try:
        # Kept for the whole run: the inner transport resolves others through it, weakly.
        pipeline = _SenderPipeline(channel, relay)
        try:
            transport = pipeline.transport(channel.spec.inner)
        except MixpanelCoreError as exc:
            relay.fatal(f"cannot build transport {channel.spec.inner!r}: {exc}")
            raise
        name = channel.spec.transport
        inner = _Inner(transport, channel.spec.inner, name, relay)

        def drop_oldest(frame: bytes) -> None:
            for endpoint, records in records_by_endpoint(frame):
                relay.taken(len(records))
                reason = "the queue was full (drop_oldest)"
                _report_each(relay, endpoint, records, name, reason, dropped=True)

        intake = Intake(channel, drop_oldest, relay.cut)
        deadline: float | None = None
        try:
            deadline = _drain(channel, intake, inner, relay)
        except BaseException as exc:
            # Records taken may have no report now (the frame being handed over, what the
            # inner transport holds if its close fails too): the counts must not call them
            # accepted, and the owner must hear why the sender stopped.
            relay.fail(f"the sender stopped delivering: {type(exc).__name__}: {exc}")
            raise
        finally:
            intake.stop()
            inner.close(_time_before(deadline, channel))
            relay.done()
    finally:
        channel.mark_sender_gone()
        if not _owner_alive():
            # Nobody will read the report queue: do not wait on it at exit.
            channel.reports.cancel_join_thread()


def _time_before(deadline: float | None, channel: QueueChannel) -> float:
    """How long the inner transport may take to flush or close: up to the owner's deadline,
    less the time to ship the answer back (``shutdown_timeout`` without a deadline)."""
    if deadline is None:
        return channel.options.shutdown_timeout
    left = deadline - time.monotonic()
    return max(left - min(REPORT_MARGIN, left / 4), 0.0)


def _drain(
    channel: QueueChannel, frames: Intake, inner: _Inner, relay: ReportRelay
) -> float | None:
    """Deliver frames until the stop request (or the owner's death); returns the owner's
    deadline, if it gave one."""
    stopping = False
    deadline: float | None = None
    drain_until: float | None = None
    while True:
        if drain_until is not None and time.monotonic() >= drain_until:
            _fail_queued(channel, frames, relay, deadline)
            return deadline
        try:
            item = frames.get(timeout=DRAIN_QUIET_PERIOD if stopping else 0.05)
        except queue.Empty:
            if stopping:
                return deadline
            relay.ship()
            if not _owner_alive():
                logger.error("the process that owns this sender died; draining and exiting")
                stopping = True
            continue
        if isinstance(item, bytes):
            inner.deliver(item)
            relay.ship()
        elif item[0] == STOP:
            deadline = item[2]
            if item[1] == 0:
                return deadline  # every producer closed: their frames were all ahead of this
            stopping = True
            if deadline is not None:
                # Frames may keep coming: deliver them for half the time left, and keep the
                # other half to close the inner transport (which delivers what it holds).
                drain_until = time.monotonic() + max(deadline - time.monotonic(), 0.0) / 2
        else:
            _, token, flush_by = item
            if time.monotonic() >= flush_by:
                continue  # the owner's flush has given up waiting: nobody reads an answer
            inner.flush(token, _time_before(flush_by, channel))


def _fail_queued(
    channel: QueueChannel, frames: Intake, relay: ReportRelay, deadline: float | None
) -> None:
    """Report FAILED every record still queued, and give it back to the owner (its close
    returns them): the owner's close() leaves no time to send them, and unread they would be
    lost without a word. Raw frames, decoded only by the owner: no cost here per record."""
    reason = "not delivered: the owner's close() timed out before the sender reached it"
    failed = 0
    while deadline is None or time.monotonic() < deadline:
        try:
            item = frames.get_nowait()
        except queue.Empty:
            break
        if not isinstance(item, bytes):
            continue  # a late flush request: nobody waits for its answer any more
        for endpoint, records in records_by_endpoint(item):
            relay.taken(len(records))
            _report_each(relay, endpoint, records, channel.spec.transport, reason)
            failed += len(records)
        relay.gave_up(item)
        relay.ship()
    if failed:
        logger.error("%s: %d queued records reported FAILED", channel.describe_sender(), failed)


class _Inner:
    """The inner transport, as the sender calls it.

    Whatever its ``send``, ``flush`` or ``close`` raises is caught here: uncaught, a
    third-party transport's bug (a full disk: ``OSError``) killed the sender, and what it held
    vanished with no report while the counts called it accepted. A raising ``send`` fails that
    message, like a ``TransportError``, and the sender goes on with the next.
    """

    def __init__(self, transport: Transport, name: str, outer: str, relay: ReportRelay) -> None:
        self._transport = transport
        # Looked up once: checking a protocol costs microseconds, and frames come by thousands.
        self._sink = transport if isinstance(transport, RecordSink) else None
        self._name = name
        self._outer = outer
        self._relay = relay
        self._logged: set[str] = set()

    def deliver(self, frame: bytes) -> None:
        """Hand a frame's records to the inner transport.

        A ``RecordSink`` takes them as they are, a run of one endpoint at a time: the producer
        validated them, and rebuilding each message only for it to be encoded again was most
        of this process's work. Any other transport gets each message rebuilt.
        """
        if self._sink is not None:
            for endpoint, records in records_by_endpoint(frame):
                self._relay.taken(len(records))
                self._send_records(self._sink, endpoint, records)
            return
        lines = split_frame(frame)
        self._relay.taken(len(lines))
        for endpoint, record in lines:
            self._send(endpoint, record)

    def _send_records(self, sink: RecordSink, endpoint: str, records: list[bytes]) -> None:
        try:
            sink.send_records(endpoint, records)  # type: ignore[arg-type]
        except MixpanelCoreError as exc:
            # It took none of them (closed, or an endpoint it does not know).
            _report_each(self._relay, endpoint, records, self._outer, exc)
        except Exception as exc:
            # A sink that raises has taken none of them (the RecordSink contract).
            reason = self._raised("send_records", exc)
            _report_each(self._relay, endpoint, records, self._outer, reason)

    def _send(self, endpoint: str, record: bytes) -> None:
        try:
            message = decode_line(endpoint, record)
        except MixpanelCoreError as exc:
            _report_each(self._relay, endpoint, [record], self._outer, exc)  # a bad record
            return
        try:
            self._transport.send(message)
        except DeliveryError:
            pass  # a synchronous inner transport has already reported what it refused
        except MixpanelCoreError as exc:
            # The transport could not take it: nobody has reported it yet.
            _report_each(self._relay, endpoint, [record], self._outer, exc)
        except Exception as exc:
            reason = self._raised("send", exc)
            _report_each(self._relay, endpoint, [record], self._outer, reason)

    def flush(self, token: int, timeout: float) -> None:
        """Flush the inner transport and answer flush request ``token``: how much it still
        holds at the owner's deadline (answering only "flushed" claimed it all delivered),
        or why it could not say."""
        try:
            undelivered = len(self._transport.flush(timeout))
        except Exception as exc:
            # What it holds stays held, with no outcome yet: the owner's flush must say so.
            self._relay.answer_flush(token, 0, self._raised("flush", exc))
            return
        self._relay.answer_flush(token, undelivered)

    def close(self, timeout: float) -> None:
        try:
            self._transport.close(timeout)
        except Exception as exc:
            # Whatever it still held has no outcome, and never will.
            self._relay.fail(self._raised("close", exc))

    def _raised(self, method: str, exc: Exception) -> str:
        """The reason for the reports: the inner transport, the method, the exception's type
        and text (as the consumer adapter reports a raising ``send``). Its traceback, for
        whoever fixes the bug, goes to this process's log once per method: once per failed
        message would flood it."""
        raised = f"raised {type(exc).__name__} in {method}: {exc}"
        reason = f"the inner transport {self._name!r} {raised}"
        if method not in self._logged:
            self._logged.add(method)
            logger.error("%s (logged once per method)", reason, exc_info=exc)
        return reason


def _report_each(
    relay: ReportRelay,
    endpoint: str,
    records: list[bytes],
    name: str,
    error: Exception | str,
    dropped: bool = False,
) -> None:
    dropped = dropped or isinstance(error, ValidationError)
    status = DeliveryStatus.DROPPED if dropped else DeliveryStatus.FAILED
    for record in records:
        message = message_in(endpoint, (None, record))  # type: ignore[arg-type]
        relay.report(DeliveryReport(message, status, name, str(error)))


def _owner_alive() -> bool:
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()
