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
import signal
import threading
import time
from collections.abc import Callable

from mixpanel_core.config import TransportConfig
from mixpanel_core.dedicated_process import collect_cycles_rarely
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter, reports_made_here
from mixpanel_core.errors import MixpanelCoreError, ValidationError
from mixpanel_core.ingestion.encoding import message_in
from mixpanel_core.messages import Message
from mixpanel_core.multiprocess.channel import STOP, QueueChannel
from mixpanel_core.multiprocess.frames import decode_line, records_by_endpoint, split_frame
from mixpanel_core.multiprocess.intake import Intake
from mixpanel_core.multiprocess.reports import (
    ReportRelay,
    message_identity,
    unreported,
)
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.redactor import Redactor, redacted_traceback
from mixpanel_core.transport import RecordSink, Transport

logger = logging.getLogger(__name__)

DRAIN_QUIET_PERIOD = 0.1
"""When frames may still come after a stop request (some worker producers had not closed, or
the owner died), the sender exits once the queue stayed empty this long (seconds)."""

REPORT_SHARE = 0.25
"""The share of the time left to the owner's deadline that the sender keeps after its inner
transport's flush or close, so that its answer (what it could not deliver, and the FAILED
reports and dead letters of what it gave up on) reaches the owner before the owner gives up
on it. A share, not a fixed margin: giving up on a backlog of tens of thousands of records
takes seconds, and a longer bound must leave it more time (review R69 F2)."""
SHIP_INTERVAL = 0.1
"""Seconds between shipments of the reports made while the inner transport closes."""


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
    # SIGTERM is for the owner. Sent to the whole process group (systemd's default
    # KillMode=control-group, ``kill -TERM -PGID``), it killed the sender holding its backlog
    # while the owner, with the documented handler, was still closing (review R69 F1). The
    # owner stops it: its close or exit close, or its death; and SIGKILL at the deadline.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
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
        spec = channel.spec.config.transports.get(channel.spec.inner)
        table = spec.options if isinstance(spec, TransportConfig) else {}
        redact = Redactor(channel.spec.config.mixpanel, table, f"transports.{channel.spec.inner}")
        inner = _Inner(transport, channel.spec.inner, name, relay, redact)

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
            # accepted, and the owner must hear why the sender stopped. (Redacted: it may be
            # the inner transport's exception, quoting a credential.)
            relay.fail(f"the sender stopped delivering: {_describe(exc, redact)}")
            raise
        finally:
            try:
                intake.stop()
                _close_shipping(inner, _time_before(deadline, channel), relay)
            finally:
                # Whatever close raised (Ctrl-C reaches this process too: it shares the
                # terminal's process group), the reports made so far and the DONE still go:
                # without them the owner takes a sender that closed its inner transport for
                # one that died holding everything.
                relay.done()
    finally:
        channel.mark_sender_gone()
        if not _owner_alive():
            # Nobody will read the report queue: do not wait on it at exit.
            channel.reports.cancel_join_thread()


def _close_shipping(inner: _Inner, timeout: float, relay: ReportRelay) -> None:
    """Close the inner transport, shipping the reports it makes meanwhile: the owner's hooks
    hear of what is delivered or given up on as it happens, not all at the end, when the
    owner's deadline may leave no time to read them (review R69 F2)."""
    closed = threading.Event()

    def ship_until_closed() -> None:
        while not closed.wait(SHIP_INTERVAL):
            relay.ship()

    shipper = threading.Thread(target=ship_until_closed, name="mixpanel-report-shipper")
    shipper.start()
    try:
        inner.close(timeout)
    finally:
        closed.set()
        shipper.join()


def _time_before(deadline: float | None, channel: QueueChannel) -> float:
    """How long the inner transport may take to flush or close: up to the owner's deadline,
    less the time to ship the answer back (``shutdown_timeout`` without a deadline)."""
    if deadline is None:
        return channel.options.shutdown_timeout
    return max((deadline - time.monotonic()) * (1 - REPORT_SHARE), 0.0)


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
    message, like a ``TransportError``, and the sender goes on with the next; unless the
    transport reported it itself before raising (see ``_fail_unreported``).
    """

    def __init__(
        self,
        transport: Transport,
        name: str,
        outer: str,
        relay: ReportRelay,
        redact: Callable[[str], str],
    ) -> None:
        self._transport = transport
        # Looked up once: checking a protocol costs microseconds, and frames come by thousands.
        self._sink = transport if isinstance(transport, RecordSink) else None
        self._name = name
        self._outer = outer
        self._relay = relay
        self._redact = redact
        self._logged: set[str | tuple[str, str]] = set()

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
        with reports_made_here() as seen:
            try:
                sink.send_records(endpoint, records)  # type: ignore[arg-type]
                return
            except MixpanelCoreError as exc:
                # It took none of them (closed, or an endpoint it does not know).
                error: Exception | str = exc
            except Exception as exc:
                # A sink that raises has taken none of them (the RecordSink contract).
                error = self._raised("send_records", exc)
        self._fail_unreported(endpoint, records, seen, error, "send_records")

    def _send(self, endpoint: str, record: bytes) -> None:
        try:
            message = decode_line(endpoint, record)
        except MixpanelCoreError as exc:
            _report_each(self._relay, endpoint, [record], self._outer, exc)  # a bad record
            return
        with reports_made_here() as seen:
            try:
                self._transport.send(message)
                return
            except MixpanelCoreError as exc:
                # It could not take it; or a DeliveryError: it says the message was refused,
                # and reports it itself when it is mixpanel-core's own (``http``), but a
                # third party's may not have: ``seen`` tells.
                error: Exception | str = exc
            except Exception as exc:
                error = self._raised("send", exc)
        self._fail_unreported(endpoint, [record], seen, error, "send")

    def _fail_unreported(
        self,
        endpoint: str,
        records: list[bytes],
        seen: list[Message],
        error: Exception | str,
        method: str,
    ) -> None:
        """Report FAILED the records of a call that raised, but for those the inner transport
        reported itself during that call (``seen``: the messages reported on this thread).
        A mixpanel-core error the inner transport raised (its ``TransportError``, say) is
        redacted and logged as ``_refused`` says, when a record of it is reported here.

        As for a ``DeliveryError``: mixpanel-core's own ``ConsumerTransport`` reports FAILED
        and then raises what the consumer raised, and a transport may report ACCEPTED and then
        fail on its own bookkeeping. A second report made the owner's hook see two outcomes of
        one message, and the counts go wrong (negative accepted, a loss hidden by a surplus).
        Matched by insert id, else by record; one report answers for one record, so that two
        records alike are not both taken as reported by one report.
        """

        def identity(record: bytes) -> object:
            message = message_in(endpoint, (None, record))  # type: ignore[arg-type]
            return message_identity(message) if message is not None else None

        records = unreported(records, identity, seen)
        if records and isinstance(error, MixpanelCoreError):
            dropped = isinstance(error, ValidationError)
            error = self._refused(method, error, len(records), dropped)
            _report_each(self._relay, endpoint, records, self._outer, error, dropped)
            return
        _report_each(self._relay, endpoint, records, self._outer, error)

    def flush(self, token: int, timeout: float) -> None:
        """Flush the inner transport and answer flush request ``token``: how much it still
        holds at the owner's deadline (answering only "flushed" claimed it all delivered),
        or why it could not say."""
        taken = self._relay.taken_so_far()
        try:
            undelivered = len(self._transport.flush(timeout))
        except Exception as exc:
            # What it holds stays held, with no outcome yet: the owner's flush must say so.
            self._relay.answer_flush(token, 0, self._raised("flush", exc), taken=taken)
            return
        self._relay.answer_flush(token, undelivered, taken=taken)

    def close(self, timeout: float) -> None:
        try:
            self._transport.close(timeout)
        except BaseException as exc:
            # Whatever it still held has no outcome, and never will. A BaseException too
            # (KeyboardInterrupt, SystemExit): the owner must hear why, and the counts must
            # not call accepted what has no report; it still ends this process, once the
            # last reports have gone (see run_sender).
            self._relay.fail(self._raised("close", exc))
            if not isinstance(exc, Exception):
                raise

    def _refused(self, method: str, exc: MixpanelCoreError, records: int, dropped: bool) -> str:
        """The reason for the reports of records the inner transport refused with a
        mixpanel-core error (a ``TransportError``: it is closed, or cannot take them), which
        did not report them itself: its text, redacted, as ``_raised`` does for any other
        exception. Logged at WARNING once per method (no traceback: a refusal is no bug);
        without it, a program that observes no reports heard nothing of the loss.
        """
        reason = self._redact(str(exc))
        if (method, "refused") not in self._logged:
            self._logged.add((method, "refused"))
            logger.warning(
                "the inner transport %r refused %d record(s) in %s: %s: %s; each is reported "
                "%s (logged once per method: the delivery reports and the counts say the rest)",
                self._name,
                records,
                method,
                type(exc).__name__,
                reason,
                "DROPPED" if dropped else "FAILED",
            )
        return reason

    def _raised(self, method: str, exc: BaseException) -> str:
        """The reason for the reports: the inner transport, the method, the exception's type
        and text (as the consumer adapter reports a raising ``send``). Its traceback, for
        whoever fixes the bug, goes to this process's log once per method: once per failed
        message would flood it.

        Both redacted: the text of anyone's exception may quote a credential the transport
        was given (an HTTP library's error quoting the request), and the reason reaches the
        owner's hook, logs and errors.
        """
        reason = f"the inner transport {self._name!r} raised {_describe(exc, self._redact, method)}"
        if method not in self._logged:
            self._logged.add(method)
            trace = redacted_traceback(exc, self._redact)
            logger.error("%s (logged once per method)\n%s", reason, trace)
        return reason


def _describe(exc: BaseException, redact: Callable[[str], str], method: str | None = None) -> str:
    """``TYPE in METHOD: TEXT`` (``TYPE`` alone when it has no text: a ``KeyboardInterrupt``),
    the text redacted: only the text, which may quote a credential, not the words around it
    (see ``Redactor``)."""
    where = f"{type(exc).__name__} in {method}" if method else type(exc).__name__
    text = redact(str(exc))
    return f"{where}: {text}" if text else where


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
