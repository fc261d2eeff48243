"""``multiprocessing_queue``: worker processes queue messages; one sender process delivers them.

Configure it with the transport the sender delivers through::

    [transports.workers]
    type = "multiprocessing_queue"
    inner = "direct"            # built only in the sender process

    [transports.direct]
    type = "buffered_http"

The process that builds this transport first owns it: it starts the sender process and
receives the sender's delivery reports. Every other process that uses it (a ``fork`` child
that inherited the client, or a worker given the ``channel``, see
``mixpanel_core.multiprocess.worker_client``) is a producer: it packs its messages into
batches and writes them to the shared frame pipe. See docs/transports/multiprocessing_queue.md.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from multiprocessing.util import Finalize
from typing import Any

import attrs

from mixpanel_core.errors import (
    ConfigError,
    MixpanelCoreError,
    NotYetDeliveredError,
    TransportError,
)
from mixpanel_core.messages import Message
from mixpanel_core.multiprocess.channel import (
    QueueChannel,
    SenderSpec,
    flush_request,
    stop_request,
)
from mixpanel_core.multiprocess.options import MultiprocessingQueueOptions
from mixpanel_core.multiprocess.producer import FrameProducer
from mixpanel_core.multiprocess.supervisor import SenderSupervisor
from mixpanel_core.multiprocess.worker import ProducerTransport, close_at_exit
from mixpanel_core.process_exit import EXIT_PRIORITY, exit_time_left, under_way_elsewhere
from mixpanel_core.schema import read
from mixpanel_core.transport import TransportContext, bounded

logger = logging.getLogger(__name__)

SENDER_OVERRUN_SECONDS = 5.0
"""How long past its stop request's deadline a sender may run at exit before it is terminated
(it closes its inner transport before that deadline; this only ends one that hangs)."""
STOP_REQUEST_AT_EXIT_SECONDS = 1.0
"""Longest the exit waits for room for its stop request once its close was interrupted."""
SENDER_SHARE_OF_CLOSE = 0.25
"""The part of the owner's ``close`` bound kept for the sender's stop when workers are slow."""


def _refuse_a_loop_of_senders(
    name: str, inner: str, configured: Mapping[str, Any], path: str
) -> None:
    """Refuse an ``inner`` that leads back to a transport of the chain through transports of
    this one's type (``a`` -> ``b`` -> ``a``). Each is built in the sender process of the one
    before it, so no process sees the loop: each started a sender process that built the
    next, a few a second, for as long as the application ran, and no message got anywhere."""
    kind = configured[name].type
    chain = [name, inner]
    while (table := configured.get(chain[-1])) is not None and table.type == kind:
        following = table.options.get("inner")
        if not isinstance(following, str):
            return  # refused when that transport is built, naming its own key
        if following in chain:
            raise ConfigError(
                f"{path}.inner: leads into a loop of {kind} transports "
                f"({' -> '.join([*chain, following])}): each would start a sender process "
                "that starts the next, without end"
            )
        chain.append(following)


class MultiprocessingQueueTransport:
    """Queues messages for a sender process; owner or producer depending on the process."""

    def __init__(self, channel: QueueChannel, context: TransportContext) -> None:
        self._channel = channel
        self._context = context
        self._owner_pid = os.getpid()
        self._producer = FrameProducer(channel, context)
        self._closed = False
        self._closing = threading.Lock()
        # Set once the close() that closed this transport is over (the sender stopped, or
        # given up on): the exit close waits for it (see _close_at_exit).
        self._close_done = threading.Event()
        self._closing_thread: threading.Thread | None = None
        """The thread of the close that closed this transport (see ``under_way_elsewhere``)."""
        self._close_ended = False
        """Whether that close ran to its end: one a signal interrupted (the documented SIGTERM
        handler raising ``SystemExit``) is finished by the exit close."""
        self._close_deadline: float | None = None
        """The deadline of the close that closed this transport, once one began."""
        self._stop_deadline: float | None = None
        """The deadline of the stop request written to the sender, once one was."""
        self._loss_told = False
        # In a fork child this object turns into that process's producer (see _in_this_process).
        self._worker: ProducerTransport | None = None
        self._worker_pid = 0
        self.supervisor = SenderSupervisor(channel, context)
        """The owner's view of the sender: its process, its totals, why it stopped."""
        self._exit_stop_done = False
        """Whether ``_stop_the_sender_regardless`` ran to its end (the last resort's check)."""
        if channel.options.start_sender:
            self.supervisor.start()
        # The last resort, should a signal interrupt the exit close where its finally cannot
        # help (before its try, or in the finally itself): multiprocessing's own exit clean-up
        # runs it just before it joins the sender without a bound.
        self._last_resort = Finalize(
            None, _stop_unless_done, (weakref.ref(self),), exitpriority=EXIT_PRIORITY
        )
        self._cancel_exit_close = close_at_exit(self, MultiprocessingQueueTransport._close_at_exit)

    @classmethod
    def from_config(
        cls, options: Mapping[str, Any], context: TransportContext
    ) -> MultiprocessingQueueTransport:
        """Build the owning side (and start the sender) from the ``[transports.NAME]`` table."""
        opts = read(MultiprocessingQueueOptions, options, context.path)
        if context.config is None:
            raise ConfigError(
                f"{context.path}: needs the whole configuration to start its sender; build it "
                "through a Pipeline or Mixpanel.from_config"
            )
        configured = context.config.transports
        for key, name in (("inner", opts.inner), ("fallback", opts.fallback)):
            if name is None:
                continue
            if name == context.name:
                raise ConfigError(f"{context.path}.{key}: cannot be this transport itself")
            if name not in configured:
                raise ConfigError(
                    f"{context.path}.{key}: no transport named {name!r}; configured: "
                    f"{', '.join(configured)}"
                )
        _refuse_a_loop_of_senders(context.name, opts.inner, configured, context.path)
        if opts.fallback is not None:
            context.hands_to(opts.fallback)
        spec = SenderSpec(context.name, opts.inner, context.config)
        if not context.observed:
            # Nobody reads the reports here: ship only the counts back, not every report.
            opts = attrs.evolve(opts, forward_reports=False)
        return cls(QueueChannel(opts, spec), context)

    @property
    def channel(self) -> QueueChannel:
        """What a worker process needs to produce into this transport (pass it when starting
        the worker: ``Process(target=..., args=(transport.channel,))``)."""
        return self._channel

    def start_sender(self) -> None:
        """Start the sender now (for ``start_sender = false``); owner only."""
        self.supervisor.start()

    # -- the transport interface -------------------------------------------------------------

    def send(self, message: Message) -> None:
        if self._owner_pid == os.getpid():
            self._producer.send(message)
        else:
            self._in_this_process().send(message)

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        """Queue the partial batch; the owner also has the sender flush its inner transport.

        Returns the messages this process could not queue. The owner raises
        ``TransportError`` when the sender's inner transport had not delivered everything by
        the deadline (those records stay queued there, and it goes on delivering them), when
        its flush raised, when the sender did not answer in time, or when it died holding
        records: those records are
        in the sender process, so they cannot be returned, and returning nothing would claim
        they were delivered.
        """
        bound = bounded(timeout, self._channel.options.shutdown_timeout)
        if self._owner_pid != os.getpid():
            return self._in_this_process().flush(timeout)
        # One deadline for the three steps: each given the whole bound, a flush waited up to
        # block_timeout for room for its batch, then twice the bound.
        deadline = time.monotonic() + bound
        left = self._producer.flush(deadline)
        if not self._channel.sender_alive():
            self._raise_if_sender_lost_records()
            return left
        if self.supervisor.on_listener_thread():
            # A reporter's flush: the sender's answer is read by this very thread, once the
            # reporter returns. Waiting for it only ran out the bound, holding every other
            # report back meanwhile (review R69 F4).
            raise TransportError(
                f"{self._context.path}: flush() cannot wait for the sender on the thread that "
                "reads its reports (from a mixpanel_delivered hook): the partial batch is "
                "queued; flush from another thread to wait for the delivery"
            )
        token = self.supervisor.next_flush_token()
        # The request carries the deadline: the sender flushes within it and answers in time.
        try:
            self._producer.put_control(
                flush_request(token, deadline), max(deadline - time.monotonic(), 0.0)
            )
        except MixpanelCoreError as exc:
            self.supervisor.forget_flush(token)
            raise TransportError(f"{self._context.path}: flush: {exc}") from exc
        answer = self.supervisor.wait_for_flush(token, max(deadline - time.monotonic(), 0.0))
        if answer is None:
            if not self._channel.sender_alive():
                self._raise_if_sender_lost_records()
                return left
            raise TransportError(
                f"{self._context.path}: the sender did not confirm the flush within {bound}s; "
                f"{self.supervisor.describe_unsettled()} yet"
            )
        if answer.error is not None:
            # Its inner transport cannot say what it holds: returning nothing would claim
            # every record it took has its outcome.
            raise TransportError(
                f"{self._context.path}: {answer.error}; {self.supervisor.describe_unsettled()} yet"
            )
        if answer.undelivered:
            raise NotYetDeliveredError(
                f"{self._context.path}: {answer.undelivered} record(s) were not yet delivered "
                f"when the flush's {bound}s ran out; they are still queued in the sender, which "
                "goes on delivering them",
                answer.undelivered,
            )
        return left

    def _raise_if_sender_lost_records(self) -> None:
        # Once per death: later messages go to the fallback (or raise in send), so later
        # flushes have nothing new to say.
        if self._loss_told:
            return
        self._loss_told = True
        unsettled = self.supervisor.unsettled()
        if unsettled == 0:
            return
        raise TransportError(
            f"{self._context.path}: {self._channel.describe_sender()} is not running; "
            f"{self.supervisor.describe_unsettled()}"
        )

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        """Queue what is left; the owner then stops the sender once the queue is drained.

        Returns what this process could not queue, and the records the sender read too late
        to hand to its inner transport (reported FAILED there, and given back). What the inner
        transport itself gives up on is reported FAILED and dead-lettered in the sender, not
        returned: it may have been in a request already out.
        """
        return self._close(timeout, at_exit=False)

    def _close_at_exit(self) -> None:
        try:  # first: a signal landing before it would skip the finally
            self._close(None, at_exit=True)
        finally:
            self._stop_unless_done()

    def _stop_unless_done(self) -> None:
        """At exit, in the owner: stop the sender, queue the last batch and wait for the last
        reports, unless a close ran to its end or this did already."""
        if self._close_ended or self._exit_stop_done or self._owner_pid != os.getpid():
            return
        bound = exit_time_left(self._channel.options.shutdown_timeout)
        self._stop_the_sender_regardless(time.monotonic() + bound)

    def _stop_the_sender_regardless(self, deadline: float) -> None:
        """The exit close was interrupted in turn (a second signal, or one while it waited
        for workers) or gave up waiting: the sender must still stop. multiprocessing's own
        exit clean-up, which runs next, joins the sender process without a bound, and the
        sender waits for a stop request (or this process's end): each would wait for the
        other forever. So the request is written now, with the exit's deadline, unless one
        was written before or a close still under way will write it, and the sender is
        terminated if it still runs a moment past that request's (or that close's) deadline,
        its records then counted lost; or at once, when no request could be written.
        """
        if self.supervisor.process is None:
            return  # started by the application (start_sender = false)
        ended = self.supervisor.ended()  # its last reports may still be on their way here
        # A close still under way on another thread writes its own request, by its deadline,
        # maybe once its workers closed: one written now, earlier, would cut it short.
        under_way = under_way_elsewhere(self._closing_thread, self._close_done)
        if not ended and self._stop_deadline is None and not under_way:
            # What the producer still holds goes ahead of the request (briefly: a second
            # signal says to be quick), or is reported FAILED: left, it was lost unreported.
            self._close_the_producer_at_exit(STOP_REQUEST_AT_EXIT_SECONDS)
            try:
                request = stop_request(self._channel.producers_open(), deadline)
                self._producer.put_control(request, STOP_REQUEST_AT_EXIT_SECONDS)
                self._stop_deadline = deadline
            except MixpanelCoreError as exc:
                logger.error("%s: could not ask the sender to stop: %s", self._context.path, exc)
        # A sender asked to stop (now, or by a close still under way with a later deadline)
        # stops by its request's deadline on its own: only one past it is terminated.
        stop_by = self._stop_deadline or ((self._close_deadline or deadline) if under_way else None)
        if ended:
            stop_by = stop_by or deadline
        stop_at = time.monotonic() if stop_by is None else stop_by + SENDER_OVERRUN_SECONDS
        if not ended:
            threading.Thread(
                target=self.supervisor.terminate_at,
                args=(stop_at,),
                name=f"mixpanel-{self._context.name}-exit-stop",
                daemon=True,
            ).start()
        if stop_by is not None:
            # Its last reports reach the hooks before the interpreter freezes the listener.
            # Interrupted, the last resort waits again unless this is it (it is out of the
            # registry once it runs).
            self.supervisor.replay_by(stop_at, last=not self._last_resort.still_active())
        self._exit_stop_done = True

    def _close(self, timeout: float | None, *, at_exit: bool) -> Sequence[Message]:
        bound = bounded(timeout, self._channel.options.shutdown_timeout)
        if self._owner_pid != os.getpid():
            if self._worker is None or self._worker_pid != os.getpid():
                return ()  # an inherited copy that never sent anything has nothing to close
            return self._worker.close(timeout)
        with self._closing:
            if not self._closed:
                self._closing_thread = threading.current_thread()
            closing_already = self._closed
            self._closed = True
        if closing_already:
            # The first close returns what is left. This one may be a reporter's, on a thread
            # the first waits for (its own, the report listener, the linger thread): at once.
            # Not at exit: the process ends when the exit close returns, and with it that
            # close, maybe before the sender was asked to stop or its last reports were made.
            # One interrupted (a signal, even as it began, before its ``try``) is finished.
            if not at_exit:
                return ()
            waited = under_way_elsewhere(self._closing_thread, self._close_done)
            if waited and not self._close_done.wait(bound):
                logger.warning(
                    "%s: another thread's close() was still under way at exit after %ss; its "
                    "sender is left to stop by that close's deadline, and its last reports waited "
                    "for until 5 s past it",
                    self._context.path,
                    bound,
                )
            elif not self._close_ended:
                self._finish_interrupted_close(bound)
            return ()
        try:
            deadline = self._close_deadline = time.monotonic() + bound
            left = list(self._producer.close(bound))
            self._stop_sender(deadline, bound)
            self._close_ended = True
            # Nothing left for them: out of multiprocessing's registry and the exit's (each
            # closed transport's stayed there, with its closure, until the process ended).
            self._last_resort.cancel()
            self._cancel_exit_close()
            return left + self.supervisor.given_up()
        finally:
            self._close_done.set()

    def _finish_interrupted_close(self, bound: float) -> None:
        """At exit, finish a close a signal interrupted: queue what the producer still holds,
        and stop the sender within ``bound``. Left as it was, nobody asked the sender to stop,
        and the interpreter's exit, which joins the sender process without a bound, waited
        for it forever while the sender waited for that request (or for this process's end).
        """
        deadline = time.monotonic() + bound
        self._close_the_producer_at_exit(bound)
        if self._stop_deadline is not None:
            self.supervisor.wait_until_finished(max(deadline - time.monotonic(), 0.0))
        else:
            self._stop_sender(deadline, bound)
        self._close_ended = True

    def _close_the_producer_at_exit(self, bound: float) -> None:
        # Closed at exit: it finishes its own close if that was the one interrupted (the
        # batches its linger thread or other threads still write are in the pipe first).
        left = self._producer.close(bound, at_exit=True)
        if left:
            logger.error(
                "%s: %d records of the last batch could not be queued at exit (reported FAILED)",
                self._context.path,
                len(left),
            )

    def _stop_sender(self, deadline: float, bound: float) -> None:
        # Workers are waited for until a quarter of the bound is left at most: the sender's
        # own stop (reading what is in the pipe, delivering it, reporting) needs that time,
        # and waiting out the whole bound for a worker that never closes left it none, so it
        # was terminated holding everything it had taken.
        workers_by = deadline - bound * SENDER_SHARE_OF_CLOSE
        still_open = self.supervisor.wait_for_producers(workers_by - time.monotonic())
        if still_open:
            logger.warning(
                "%s: %d worker producers had not closed; stopping the sender anyway",
                self._context.path,
                still_open,
            )
        if self._channel.sender_alive():
            try:
                request = stop_request(still_open, deadline)
                self._producer.put_control(request, max(deadline - time.monotonic(), 0.0))
                self._stop_deadline = deadline
            except MixpanelCoreError as exc:
                logger.error("%s: could not ask the sender to stop: %s", self._context.path, exc)
        self.supervisor.wait_until_finished(max(deadline - time.monotonic(), 0.0))

    def _in_this_process(self) -> ProducerTransport:
        # This object was inherited by fork(): this process is a worker. The owner's batch,
        # threads and locks stay the parent's; the worker gets its own producer.
        if self._worker is None or self._worker_pid != os.getpid():
            self._worker = ProducerTransport(self._channel, self._context, exit_owner=self)
            self._worker_pid = os.getpid()
        return self._worker


def _stop_unless_done(ref: weakref.ref[MultiprocessingQueueTransport]) -> None:
    transport = ref()
    if transport is not None:
        transport._stop_unless_done()
