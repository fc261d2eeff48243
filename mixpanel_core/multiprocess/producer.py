"""``FrameProducer``: packs a process's messages into frames and writes them to the pipe.

One per process. ``send`` appends the message's wire line to a batch; a full batch is queued
(written to the frame pipe, in atomic chunks: see ``pipe``) by the caller, a partial one by a
small thread after ``linger`` seconds. Writing happens in the calling thread, so once it
returns the frame is in the pipe: there is no feeder thread whose frames a killed or exiting
process could lose. Queuing applies the full-queue policy and notices a sender that is gone:
the batch then goes to the fallback transport, or is reported failed and the caller gets a
``TransportError``.

A batch holds lines (bytes) only: the messages are freed as soon as they are encoded, and
rebuilt from their lines in the rare case a batch cannot be queued. Lines are nothing for the
garbage collector to walk; the messages of a batch of hundreds would be.

A producer dropped without ``close`` (a worker client built per request) is not kept forever
by its linger thread: the thread holds it strongly only while its batch has lines, writes
them as usual, then ends and calls ``on_done`` (see ``_linger_while_owned``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, reports_made_here
from mixpanel_core.errors import (
    MixpanelCoreError,
    QueueFullError,
    TransportError,
)
from mixpanel_core.messages import Message
from mixpanel_core.multiprocess.channel import QueueChannel
from mixpanel_core.multiprocess.frames import decode_frame, encode_frame, encode_line
from mixpanel_core.multiprocess.pipe import ChunkWriter, Progress, Written
from mixpanel_core.multiprocess.reports import message_identity, unreported
from mixpanel_core.process_exit import under_way_elsewhere
from mixpanel_core.transport import Transport, TransportContext, tell_auth_not_carried

logger = logging.getLogger(__name__)

Unwritten = Callable[[bool], list[Message]]
"""Reports a frame that was not written (or hands its messages to ``fallback``), given
``raising``; returns what is left, as ``_queue`` does. Called once the queue lock is released."""


class FrameProducer:
    """The producing half of a ``multiprocessing_queue`` transport, in one process."""

    def __init__(
        self,
        channel: QueueChannel,
        context: TransportContext,
        on_first_send: Callable[[], object] | None = None,
        on_done: Callable[[], object] | None = None,
        anchor: Callable[[], object] | None = None,
    ) -> None:
        """``on_first_send`` runs before the first frame is written (under the batch lock).
        ``on_done`` runs once this producer will write nothing more: at the end of the
        ``close`` that closed it (its last frame written, or reported), or in the linger
        thread once it ends because this producer was freed without ``close``; the thread
        holds it, so it must not hold this producer.
        ``anchor`` returns what must live as long as lines wait here (a worker client's
        pipeline, which builds the ``fallback`` when the sender is found gone)."""
        self._channel = channel
        self._options = channel.options
        self._context = context
        self._on_first_send = on_first_send
        self._on_done = on_done
        self._anchor = anchor
        self._batch_lock = threading.Lock()
        # Batches taken from _lines and not yet written (or given up): close() waits for
        # them, so that a frame another thread is still writing cannot come after the
        # owner's stop request, which a closed producer's frames must all be ahead of.
        self._writing = 0
        # The batches of ``_writing`` the current thread is writing: a close made by a
        # reporter of one of them (reports are made while writing) does not wait for it.
        self._writing_here = threading.local()
        self._written = threading.Condition(self._batch_lock)
        # Frames are put one at a time so that one thread's batches stay in order. Never held
        # while reporting: a reporter may write again (see _queue).
        self._queue_lock = threading.RLock()  # for its _is_owned(): never taken twice
        self._writing_now = threading.local()
        """Whether this thread is between taking and releasing the queue lock."""
        self._lines: list[bytes] = []
        # Held by the linger thread: this producer, while its batch has lines, so that one
        # dropped without close() lives until they are written.
        self._keeper = _Keeper()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        # Set once the close() that closed this producer is over (its last frame written or
        # reported, on_done run): the close at exit waits for it, since the process ends
        # when that returns (see close).
        self._close_done = threading.Event()
        self._closing_thread: threading.Thread | None = None
        """The thread of that close (see ``under_way_elsewhere``)."""
        self._close_ended = False
        """Whether that close ran to its end (see ``close``)."""
        self._told_done = False
        """Whether ``on_done`` ran (see ``_tell_done``)."""
        self._sender_gone = False
        self.fallback: Transport | None = None
        """Where to send when the sender is gone; resolved through the context when unset."""
        self._writer = ChunkWriter(channel.pipe, channel.options.check_interval)

    # -- taking messages --------------------------------------------------------------------

    def send(self, message: Message) -> None:
        if message.auth is not None:
            tell_auth_not_carried(
                self._context.name, "the [mixpanel] settings of the process owning the queue"
            )
        if self._sender_gone:
            self._deliver_elsewhere([message], raising=True)
            return
        line = encode_line(message)
        with self._batch_lock:
            if self._closed:
                raise TransportError(f"{self._context.path}: the transport is closed")
            self._lines.append(line)
            if len(self._lines) == 1:
                self._keeper.producer = self
                self._keeper.anchor = self._anchor() if self._anchor is not None else None
            if self._thread is None:
                self._start_linger_thread()
            if len(self._lines) < self._options.batch_size:
                return
            lines = self._take()
        try:
            self._queue(lines, raising=True)
        finally:
            self._done_writing()

    def flush(self, deadline: float | None = None) -> list[Message]:
        """Queue the partial batch; returns the messages that could not be queued.

        With a ``deadline`` (``time.monotonic()``), waiting for room ends there at the latest.
        """
        with self._batch_lock:
            lines = self._take()
        try:
            return self._queue(lines, raising=False, deadline=deadline)
        finally:
            self._done_writing()

    def close(self, timeout: float | None = None, *, at_exit: bool = False) -> list[Message]:
        """Stop the linger thread and queue what is left, within ``timeout``; then ``on_done``.

        Returns (and reports FAILED) what could not be queued. A close while another is under
        way returns ``[]`` (the first returns what it could not queue): at once, as it may be
        a reporter's, on a thread the first close waits for; or, ``at_exit``, once that close
        is over, within ``timeout``, since the process ends when the exit close returns (a
        ``multiprocessing`` child runs it while its other threads still run).
        """
        with self._batch_lock:
            if not self._closed:
                self._closing_thread = threading.current_thread()
            closing_already = self._closed
            self._closed = True
        if closing_already:
            # One interrupted (a signal, even as it began, before its ``try``) is finished.
            if not at_exit:
                return []
            waited = under_way_elsewhere(self._closing_thread, self._close_done)
            if waited and not self._close_done.wait(timeout):
                logger.warning(
                    "%s: another thread's close() was still writing the last batch after %ss; "
                    "not waiting for it any longer",
                    self._context.path,
                    timeout,
                )
            elif not self._close_ended:
                self._finish_interrupted_close(timeout)
            return []
        ended = False
        try:
            left = self._close(timeout)
            ended = True
            return left
        finally:
            try:
                # A close a signal interrupted (SystemExit from a SIGTERM handler) may leave
                # lines in the batch: this producer stays open for the exit close to write
                # them, and is done only then (an exit close interrupted in turn is done).
                if ended or at_exit:
                    self._tell_done()
            finally:
                # Not ended when interrupted, at exit too: a later close at exit (the
                # transport's own last steps) still queues what the batch holds, or reports it.
                self._close_ended = ended
                self._close_done.set()

    def _finish_interrupted_close(self, timeout: float | None) -> None:
        """At exit, finish a close a signal interrupted (the batches other threads still
        write, what is left in the batch), then be done."""
        ended = False
        try:
            self._close(timeout)  # what it cannot queue is reported FAILED
            ended = True
        finally:
            self._close_ended = ended  # interrupted in turn: the next close at exit goes on
            self._tell_done()

    def _tell_done(self) -> None:
        """Run ``on_done`` once: a close interrupted at exit tells it, and so may the one
        that finishes it."""
        if self._on_done is not None and not self._told_done:
            self._told_done = True
            self._on_done()

    def _close(self, timeout: float | None) -> list[Message]:
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        # Not on the linger thread itself: a reporter of its batch may be the one closing.
        if self._thread is not None and self._thread is not threading.current_thread():
            wait = self._options.block_timeout + self._options.linger
            if deadline is not None:
                wait = max(min(wait, deadline - time.monotonic()), 0.0)
            self._thread.join(wait)
        with self._written:
            # A batch another thread took just before close: its frame must be in the pipe
            # before this returns (bounded: each write gives up at its block_timeout).
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            here = getattr(self._writing_here, "count", 0)
            self._written.wait_for(lambda: self._writing == here, left)
        return self.flush(deadline)

    def put_control(self, item: object, timeout: float) -> None:
        """Write a control item (owner only), waiting for room while the sender lives."""
        deadline = time.monotonic() + timeout
        # Within the timeout too: another thread of this process may be blocked writing a
        # frame (the sender not reading) for up to its block_timeout, and the owner's close()
        # asking the sender to stop would wait for it past its own bound.
        self._refuse_reentry()
        try:
            if not self._queue_lock.acquire(timeout=timeout):
                raise QueueFullError(
                    f"{self._context.path}: another thread's frame held the queue for "
                    f"{timeout}s (the sender is not reading it)"
                )
            self._writing_now.value = True
            if self._writer.write_control(item, deadline, self._channel.sender_alive):
                return
        finally:
            self._writing_now.value = False
            self._release_queue()
        if not self._channel.sender_alive():
            raise TransportError(f"{self._channel.describe_sender()} is not running")
        raise QueueFullError(f"{self._context.path}: the queue stayed full for {timeout}s")

    # -- the linger thread --------------------------------------------------------------------

    def _start_linger_thread(self) -> None:
        if self._on_first_send is not None:
            self._on_first_send()
        # Nothing here may hold this producer strongly (the keeper does, while it has lines).
        self._thread = threading.Thread(
            target=_linger_while_owned,
            args=(
                weakref.ref(self),
                self._wake,
                self._options.linger,
                self._keeper,
                self._on_done,
            ),
            name=f"mixpanel-{self._context.name}-linger",
            daemon=True,
        )
        self._thread.start()

    def _linger_once(self) -> None:
        try:
            self.flush()
        except Exception:  # a background thread has no caller to tell; keep lingering
            logger.exception("%s: queuing a batch failed", self._context.path)

    def forget_batch(self) -> None:
        """In a ``fork()`` child: let go of the parent's batch and what keeps it (the parent
        sends it; the child has no linger thread, and its lock may be held by a thread the
        child does not have, so none is taken)."""
        self._lines = []
        self._keeper.producer = self._keeper.anchor = None

    def _take(self) -> list[bytes]:
        """The batch, to be queued by the caller, who then calls ``_done_writing``; under
        ``_batch_lock``."""
        lines, self._lines = self._lines, []
        # The caller holds this producer until the batch is written; the keeper keeps what
        # ``anchor`` gave until nothing is being written either (see ``_done_writing``).
        self._keeper.producer = None
        self._writing += 1
        self._writing_here.count = getattr(self._writing_here, "count", 0) + 1
        return lines

    def _done_writing(self) -> None:
        with self._written:
            self._writing -= 1
            self._writing_here.count -= 1
            if self._closed:
                self._written.notify_all()
        # Nothing waits and nothing is being written: the anchor (a worker client's pipeline,
        # which builds the fallback) may go. Kept in the keeper until then, never in a local:
        # a fork() child can clear the keeper, not the frames of its parent's threads.
        with self._batch_lock:
            anchor = None
            if not self._lines and self._writing == 0:
                anchor, self._keeper.anchor = self._keeper.anchor, None
        del anchor  # the pipeline, if this was its last reference, is freed outside the lock

    # -- queuing one batch ---------------------------------------------------------------------

    def _queue(
        self, lines: list[bytes], raising: bool, deadline: float | None = None
    ) -> list[Message]:
        """Write one batch as a frame, applying the full-queue policy; returns the messages
        not written (reported). ``deadline`` (a closing producer's) caps every wait."""
        if not lines:
            return []
        progress = Progress()
        try:
            unwritten = self._write(lines, deadline, progress)
        except BaseException as exc:
            self._interrupted(lines, progress, exc)
            raise
        if unwritten is None:
            return []
        # Reported (or handed to the fallback, which may report) only now that the queue lock
        # is released: a reporter, a user's plugin, may write again on this very thread
        # (track an event about the failure, flush, close), and would wait for a lock its own
        # thread holds: for ever, or until its close's bound.
        return unwritten(raising)

    def _interrupted(self, lines: list[bytes], progress: Progress, exc: BaseException) -> None:
        """A signal's exception (SystemExit from a SIGTERM handler, KeyboardInterrupt) left the
        write of ``lines``, most likely while it waited for room. They were taken from the
        batch, so no close would find them: reported FAILED, and no longer counted queued, as
        a frame given up at its deadline, unless the frame may be whole in the pipe (its last
        chunk was tried): the sender then delivers it and reports it, or counts it cut short.
        """
        if progress.last_chunk_tried:
            return
        if progress.counted:
            self._channel.count_queued(-len(lines))
        reason = f"not queued: {type(exc).__name__} interrupted the write"
        self._report(decode_frame(encode_frame(lines)), DeliveryStatus.FAILED, reason)
        logger.error(
            "%s: %s; %d message(s) reported FAILED", self._context.path, reason, len(lines)
        )

    def _write(
        self, lines: list[bytes], deadline: float | None, progress: Progress
    ) -> Unwritten | None:
        """Under the queue lock: write the frame; ``None`` once it is written whole, else
        what reports (or delivers elsewhere) its messages, to be called without the lock."""
        frame = encode_frame(lines)
        wait = -1.0 if deadline is None else max(deadline - time.monotonic(), 0.0)
        self._refuse_reentry()
        try:
            if not self._queue_lock.acquire(timeout=wait):
                # Another thread of this process is still writing (the sender is not reading).
                return lambda raising: self._not_written(frame, Written.NONE, raising, True)
            self._writing_now.value = True
            if self._sender_gone or not self._channel.sender_alive():
                return self._sender_found_gone(frame, deadline)
            options = self._options
            now = time.monotonic()
            until = now + options.block_timeout
            if deadline is not None:
                until = min(until, deadline)
            # drop_newest drops a frame that finds no room at once; once its first chunk is
            # in, the rest waits like any other (a frame given up half way is lost whole).
            first = now if options.when_full == "drop_newest" else until
            records = len(lines)
            # Counted before the first chunk: a producer killed half way leaves its records
            # counted as queued and never taken, so the owner can tell they were lost.
            self._channel.count_queued(records)
            progress.counted = True
            alive = self._channel.sender_alive
            written = self._writer.write(frame, records, first, until, alive, progress)
            if written is Written.ALL:
                return None
            self._channel.count_queued(-records)
            if not self._channel.sender_alive():
                return self._sender_found_gone(frame, deadline)
            timed_out = deadline is not None and time.monotonic() >= deadline
            return lambda raising: self._not_written(frame, written, raising, closing=timed_out)
        finally:
            self._writing_now.value = False
            self._release_queue()

    def _refuse_reentry(self) -> None:
        """Before a write: refuse one on a thread that is writing already (a signal handler
        that sends while the code it interrupted writes), and release the queue lock this
        thread holds with no write under way. A signal's exception (SystemExit from a SIGTERM
        handler) can land just after the lock is taken or just before it is released, and
        Python gives no way to close both gaps; the lock stayed held for ever, every later
        write waiting on it. Left held so, it is released by the thread's next write (the
        exit close's, after such a signal)."""
        if self._queue_lock._is_owned():  # type: ignore[attr-defined]
            if getattr(self._writing_now, "value", False):
                raise TransportError(
                    f"{self._context.path}: a frame is being written on this thread already "
                    "(a signal handler sending while the code it interrupted was queuing?)"
                )
            self._queue_lock.release()

    def _release_queue(self) -> None:
        # The lock is held once per thread at most (_refuse_reentry): held, it is this write's.
        # (_writing_now is cleared by the caller first, without a call in between: a signal
        # landing as this function is entered, or between the check and the release, leaves
        # the lock for _refuse_reentry to release: see docs/transports/multiprocessing_queue.md,
        # "Signals", for what that does not cover.)
        if self._queue_lock._is_owned():  # type: ignore[attr-defined]
            self._queue_lock.release()

    def _sender_found_gone(self, frame: bytes, deadline: float | None) -> Unwritten:
        # Marked (and logged, once) under the queue lock: a thread that takes it next sends
        # elsewhere at once instead of looking for the sender again.
        if not self._sender_gone:
            self._sender_gone = True
            logger.error("%s is not running", self._channel.describe_sender())
        return lambda raising: self._frame_elsewhere(frame, raising, deadline)

    def _frame_elsewhere(
        self, frame: bytes, raising: bool, deadline: float | None
    ) -> list[Message]:
        """``_deliver_elsewhere`` for a frame taken from the batch. A signal's exception
        (SystemExit from a SIGTERM handler) landing before its messages were all offered to the
        fallback (most often while the fallback is built: its first import takes about a
        millisecond) puts those not offered back at the head of the batch, for the exit close
        to hand over. They were only in this frame, and vanished with no report, no line."""
        progress = HandOver()
        try:
            return self._deliver_elsewhere(decode_frame(frame), raising, deadline, progress)
        except BaseException as exc:
            if isinstance(exc, Exception):
                raise
            lines = frame.split(b"\n")
            with self._batch_lock:
                self._lines[:0] = lines[progress.settled :]
            if progress.sending:
                logger.error(
                    "%s: %s interrupted the hand-over of a message to the fallback %r, which "
                    "may or may not have taken it: %s",
                    self._context.path,
                    type(exc).__name__,
                    self._options.fallback,
                    lines[progress.settled - 1][:200].decode(errors="replace"),
                )
            raise

    def _not_written(
        self, frame: bytes, written: Written, raising: bool, closing: bool
    ) -> list[Message]:
        messages = decode_frame(frame)
        policy = self._options.when_full
        if closing:
            reason = (
                "not queued: the sender did not read the queue before close() or flush() timed out"
            )
            self._report(messages, DeliveryStatus.FAILED, reason)
            logger.error(
                "%s: %s; %d message(s) reported FAILED", self._context.path, reason, len(messages)
            )
            return messages
        if policy != "block":
            if written is Written.PART:
                reason = f"the queue stayed full for {self._options.block_timeout}s ({policy})"
            else:
                reason = f"the queue was full ({policy})"
            self._report(messages, DeliveryStatus.DROPPED, reason)
            return []
        reason = f"the queue stayed full for {self._options.block_timeout}s (policy 'block')"
        self._report(messages, DeliveryStatus.FAILED, reason)
        if raising:
            raise QueueFullError(
                f"{self._context.path}: {reason}; {len(messages)} messages were not queued. "
                "Raise max_queue_messages or block_timeout, or choose a drop policy."
            )
        return messages

    # -- when the sender is gone ---------------------------------------------------------------

    def _deliver_elsewhere(
        self,
        messages: Sequence[Message],
        raising: bool,
        deadline: float | None = None,
        progress: HandOver | None = None,
    ) -> list[Message]:
        """Hand ``messages`` to the fallback (report them FAILED without one); returns those
        given up on, as ``_queue`` does. ``deadline``: a closing producer's (see ``_hand_over``);
        ``progress``: how far the hand-over got (see ``_frame_elsewhere``)."""
        reason = f"{self._channel.describe_sender()} is not running and no fallback is configured"
        try:
            fallback = self._fallback_transport()
        except TransportError as exc:
            # Reported, raising or not: the batch holds the messages of earlier sends too,
            # whose callers got no error (a review saw them vanish with no report, no line, and
            # not returned by close); and the linger thread has no caller to raise to.
            fallback, reason = None, f"{self._channel.describe_sender()} is not running: {exc}"
        if fallback is not None:
            return self._hand_over(fallback, messages, raising, deadline, progress or HandOver())
        self._report(messages, DeliveryStatus.FAILED, reason)
        # Said, too: with no mixpanel_delivered observer the reports go nowhere.
        logger.error(
            "%s: %s; %d message(s) reported FAILED", self._context.path, reason, len(messages)
        )
        if raising:
            raise TransportError(
                f"{self._context.path}: {reason}; {len(messages)} messages were not queued"
            )
        return list(messages)

    def _hand_over(
        self,
        fallback: Transport,
        messages: Sequence[Message],
        raising: bool,
        deadline: float | None,
        progress: HandOver,
    ) -> list[Message]:
        """Offer each message to ``fallback``; returns those reported FAILED here. ``progress``
        says how many were offered or reported, and whether one is being offered.

        A message it refuses (its ``send`` raises) has one outcome: the report the fallback
        made of it on this thread during that ``send`` (the kafka transport reports FAILED then
        raises ``TransportError``, ``buffered_http`` reports DROPPED then raises
        ``QueueFullError``, ``http`` reports then raises ``DeliveryError``), else a FAILED
        report made here (a closed fallback reports nothing). A refusal says nothing about the
        next message (one too large for Kafka), so each is offered, until one of two things
        says the rest would wait in vain: a ``QueueFullError`` after the fallback waited for
        room (not one refusing at once a record that can never fit), or a refusal after
        ``deadline`` (a closing producer's; otherwise
        ``block_timeout`` from now). The rest are then reported FAILED unoffered: neither
        ``close()`` nor a caller's ``track()`` may wait once per message of a batch.

        Raising (a caller's ``send``, whose message is the last), this raises only when the
        caller's own message was not taken, as the fallback raised it (a ``QueueFullError``
        stays one): the others have their reports. A ``multiprocessing_queue`` that is itself
        a fallback must not raise for a message it took because another was refused: its
        feeder would report the taken one FAILED.
        """
        name = self._options.fallback
        failed: list[Message] = []
        refusals: list[Exception] = []
        unoffered = 0
        last_refused: Exception | None = None
        if deadline is None:
            deadline = time.monotonic() + self._options.block_timeout
        for index, message in enumerate(messages):
            stayed_full = bool(refusals) and _stayed_full(refusals[-1])
            if stayed_full or (refusals and time.monotonic() >= deadline):
                unoffered = len(messages) - index
                why = (
                    "its queue stayed full"
                    if stayed_full
                    else "it refused a message past the hand-over's bound (the deadline of "
                    "close() or flush(), else block_timeout)"
                )
                reason = f"not handed to the fallback {name!r}: {why}"
                progress.settled = len(messages)  # reported now: never put back
                self._report(messages[index:], DeliveryStatus.FAILED, reason)
                failed.extend(messages[index:])
                break
            progress.settled, progress.sending = index + 1, True
            with reports_made_here() as seen:
                try:
                    fallback.send(message)
                    progress.sending = False
                    continue
                except Exception as exc:
                    progress.sending = False
                    error = exc
            refusals.append(error)
            if index == len(messages) - 1:
                last_refused = error
            if unreported([message], message_identity, seen):
                reason = f"the fallback {name!r} refused it: {type(error).__name__}: {error}"
                self._report([message], DeliveryStatus.FAILED, reason)
                failed.append(message)
        if not failed and not refusals:
            return []
        by_fallback = len(refusals) - (len(failed) - unoffered)
        summary = (
            f"{self._context.path}: {self._channel.describe_sender()} is not running; of "
            f"{len(messages)} messages for the fallback {name!r}, it refused {len(refusals)} "
            f"({by_fallback} reported by it) and {unoffered} were not offered; "
            f"{len(failed)} reported FAILED here"
        )
        if unoffered:
            last_refused = refusals[-1]  # the refusal that left the last message unoffered
        if raising and last_refused is not None:
            last_refused.add_note(summary)
            raise last_refused
        logger.error("%s", summary)
        return failed

    def _fallback_transport(self) -> Transport | None:
        name = self._options.fallback
        if name is None:
            return None
        if self.fallback is None:
            try:
                self.fallback = self._context.resolve(name)
            except MixpanelCoreError as exc:
                raise TransportError(
                    f"{self._context.path}.fallback: cannot build {name!r}: {exc}"
                ) from exc
        return self.fallback

    def _report(self, messages: Sequence[Message], status: DeliveryStatus, reason: str) -> None:
        for message in messages:
            self._context.report(DeliveryReport(message, status, self._context.name, reason))


class HandOver:
    """How far a hand-over to the fallback got, for one a signal's exception interrupts:
    ``settled`` messages were offered (or reported FAILED unoffered), and ``sending`` says
    whether the fallback's ``send`` of the last of them was under way."""

    __slots__ = ("sending", "settled")

    def __init__(self) -> None:
        self.settled = 0
        self.sending = False


def _stayed_full(error: Exception) -> bool:
    """Whether ``error`` is a queue's refusal after waiting for room (see ``QueueFullError``)."""
    return isinstance(error, QueueFullError) and error.waited


class _Keeper:
    """A producer whose batch has lines, and its ``anchor``, kept alive by its linger thread
    (``None`` when the batch is empty)."""

    __slots__ = ("anchor", "producer")

    def __init__(self) -> None:
        self.producer: FrameProducer | None = None
        self.anchor: object = None


def _linger_while_owned(
    ref: weakref.ref[FrameProducer],
    wake: threading.Event,
    linger: float,
    keeper: _Keeper,
    on_freed: Callable[[], object] | None,
) -> None:
    """The linger thread: queue the partial batch every ``linger`` s until ``close``, or until
    the producer is freed.

    It holds the producer only while it queues a batch, and through ``keeper`` while the batch
    has lines: a running thread is never collected, so one that held its producer would keep
    every producer dropped without ``close`` (and itself) forever. A producer dropped with
    lines is kept until this thread has written them; once freed, the thread notices within
    ``linger`` and ends, after ``on_freed`` (which no finalizer could call: it takes the
    ledger's locks). ``keeper`` is an argument only so that the thread holds it.
    """
    while True:
        wake.wait(linger)
        producer = ref()
        if producer is None:
            break
        if producer._closed:
            return  # close() queues what is left and releases the rest
        producer._linger_once()
        del producer  # idle again: waiting must not keep the producer alive
    if on_freed is not None:
        try:
            on_freed()
        except Exception:  # a background thread has no caller to tell
            logger.exception("releasing a producer freed without close() failed")
