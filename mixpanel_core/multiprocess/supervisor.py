"""``SenderSupervisor``: the owning process's side of the sender.

It starts the sender process (or waits for one started by hand), replays the sender's
delivery reports through the owner's reporter on a thread, notices a sender that died, and
runs the shutdown: wait for the worker producers, queue the stop request, wait for the
sender to drain and close its inner transport.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import multiprocessing.connection
import queue
import threading
import time
from multiprocessing.process import BaseProcess
from typing import cast

from mixpanel_core.errors import TransportError
from mixpanel_core.messages import Message
from mixpanel_core.multiprocess.channel import QueueChannel
from mixpanel_core.multiprocess.frames import decode_frame
from mixpanel_core.multiprocess.options import StartMethod
from mixpanel_core.multiprocess.reports import (
    CUT,
    DONE,
    FATAL,
    FLUSHED,
    REPORTS,
    FlushAnswer,
    decode_report,
)
from mixpanel_core.multiprocess.sender import run_sender
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.transport import TransportContext

logger = logging.getLogger(__name__)


def _process_class(start_method: StartMethod) -> type[BaseProcess]:
    if start_method == "fork":
        return multiprocessing.get_context("fork").Process
    if start_method == "forkserver":
        return multiprocessing.get_context("forkserver").Process
    return multiprocessing.get_context("spawn").Process


DONE_GRACE = 1.0
"""Seconds the report listener may read nothing from a sender that died (a non-zero exit
code) before it counts as dead: its last report may be half written."""


class SenderSupervisor:
    """Owns the sender process of one channel; lives in the process that built the transport."""

    def __init__(self, channel: QueueChannel, context: TransportContext) -> None:
        self._channel = channel
        self._context = context
        self._process: BaseProcess | None = None
        self._tokens = itertools.count(1)
        self._waiting: set[int] = set()
        """Flush requests someone still waits for; a late answer to another is dropped."""
        self._answered: dict[int, FlushAnswer] = {}
        """Answers by token: how many records the sender's inner flush left queued, or what
        it raised."""
        self._answers = threading.Condition()
        self._given_up = b""
        self.counts: dict[str, int] | None = None
        """The sender's totals per delivery status, once it has finished."""
        self.failure: str | None = None
        """Why the sender stopped early, or failed at its stop: it died, could not build its
        inner transport, stopped delivering on an error, or its inner transport's ``close``
        raised."""
        self._finished = threading.Event()
        self._death_noticed = False
        self._terminated = False
        """Whether this stopped the sender at the deadline (and logged what it lost)."""
        self._terminating = threading.Lock()
        """Taken to decide that once (see ``terminate_at``)."""
        self._replaying_at_exit = False
        """Whether the exit waits for the last reports (``replay_by``), and says what is left
        of them at its own, later, deadline: a close's wait does not say it too."""
        self._handled = 0
        """Items and reports the listener has acted on: its progress, for
        ``wait_until_finished``."""
        self._settled = 0
        """Reports of the sender's records replayed here (each settles one record)."""
        self._settled_by_flush = 0
        """Records the sender had taken when a flush began that left none held and raised
        nothing: each has its outcome, reported back or not (``forward_reports`` off)."""
        self._overcount_logged = False
        self.unaccounted: int | None = 0
        """Records without an outcome: those the sender took but never reported, once it was
        killed or died (None: unknown, because accepted records are not reported back
        without forwarding, and some were taken since the last complete flush), and those
        producers wrote that never reached it (a producer
        killed in the middle of a frame)."""
        self.cut = 0
        """Records of frames the sender discarded unfinished (their producer stopped half way:
        killed, or gave up at a deadline and reported them itself)."""
        self._listener = threading.Thread(
            target=self._listen, name=f"mixpanel-{context.name}-reports", daemon=True
        )
        self._listener.start()
        in_fork_children(self, SenderSupervisor._disown_in_child)

    def _disown_in_child(self) -> None:
        # A child made by a bare os.fork() (not multiprocessing, which empties the list in
        # its children) inherits multiprocessing's list of this process's children, the
        # sender in it. At the child's normal exit multiprocessing joins it, which only its
        # parent may: "AssertionError: can only join a child process", and the exit's last
        # finalizers skipped. ``_children`` is private, hence the guard: were it gone, only
        # that message would come back.
        children = getattr(multiprocessing.process, "_children", None)
        if self._process is not None and isinstance(children, set):
            children.discard(self._process)

    @property
    def process(self) -> BaseProcess | None:
        return self._process

    def start(self) -> None:
        """Start the sender process with the configured start method."""
        if self._process is not None:
            raise TransportError(f"{self._context.path}: the sender is already started")
        process = _process_class(self._channel.options.start_method)(
            target=run_sender,
            args=(self._channel,),
            name=f"mixpanel-sender-{self._context.name}",
        )
        process.start()
        self._process = process

    # -- what the sender holds -----------------------------------------------------------------

    def unsettled(self) -> int | None:
        """Records queued for the sender that have no report here yet: those it took and
        never reported, and those it never took. None when that cannot be known
        (``forward_reports`` is off, so accepted records are not reported back, and the
        sender took records since its last complete flush)."""
        if not self._channel.options.forward_reports:
            if self._unknown_outcomes():
                return None
            return self._channel.never_taken()
        return self._unreported() + self._channel.never_taken()

    def _unknown_outcomes(self) -> int:
        """Records the sender took since its last complete flush (``forward_reports`` off:
        their outcomes are not reported back, so nothing here knows what became of them)."""
        return max(self._channel.taken.value - self._settled_by_flush, 0)

    def _unreported(self) -> int:
        """Records the sender took that have no report here yet (forwarding on)."""
        self._check_settled()
        return max(self._channel.taken.value - self._settled, 0)

    def _check_settled(self) -> None:
        """Log, once, more reports than records taken: each record has one outcome, so some
        record was reported twice, and a surplus would hide as many records with none (the
        counts here keep to 0 rather than go negative, but must not stay silent)."""
        if self._overcount_logged or not self._channel.options.forward_reports:
            return
        taken = self._channel.taken.value
        if self._settled > taken:
            self._overcount_logged = True
            logger.error(
                "%s: %d delivery reports for the %d records it took: some record was reported "
                "more than once, so the records without a report cannot be counted reliably",
                self._describe(),
                self._settled,
                taken,
            )

    def describe_unsettled(self) -> str:
        """The records without an outcome, in words, for logs and errors."""
        never_taken = self._channel.never_taken()
        if not self._channel.options.forward_reports:
            # Those a complete flush settled are not counted: told they were lost, a user
            # would send them again, and a profile's $add would be applied twice.
            since = " since its last complete flush" if self._settled_by_flush else ""
            held = (
                f"the outcome of {self._unknown_outcomes()} records it took{since} is unknown "
                "(forward_reports is off)"
            )
        else:
            held = f"{self._unreported()} records it took have no delivery report"
        return f"{held}; {never_taken} queued records never reached it"

    # -- requests to the sender ---------------------------------------------------------------

    def next_flush_token(self) -> int:
        """A token for a flush request; ``wait_for_flush(token, ...)`` must follow."""
        token = next(self._tokens)
        with self._answers:
            self._waiting.add(token)
        return token

    def forget_flush(self, token: int) -> None:
        """The flush request ``token`` was never queued: nobody waits for its answer."""
        with self._answers:
            self._waiting.discard(token)

    def wait_for_flush(self, token: int, timeout: float) -> FlushAnswer | None:
        """Wait until the sender answered flush request ``token``; returns its answer (how many
        records its inner transport did not deliver in time, still queued there, or what that
        flush raised), or None on timeout or the sender's death."""
        deadline = time.monotonic() + timeout
        with self._answers:
            try:
                while token not in self._answered:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._finished.is_set():
                        return None
                    self._answers.wait(min(left, self._channel.options.check_interval))
                undelivered = self._answered.pop(token)
            finally:
                self._waiting.discard(token)
        return undelivered

    def given_up(self) -> list[Message]:
        """The messages the sender reported FAILED at its stop without handing them to its
        inner transport, once its last report arrived; rebuilt from their records."""
        return decode_frame(self._given_up)

    def wait_for_producers(self, timeout: float) -> int:
        """Wait until every worker producer closed (or died); returns how many are still
        open, whose frames may follow the stop request."""
        deadline = time.monotonic() + timeout
        while True:
            still_open = self._channel.producers_open()
            if still_open == 0 or time.monotonic() > deadline:
                return still_open
            time.sleep(0.01)

    def wait_until_finished(self, timeout: float) -> bool:
        """Wait for the sender's last report (and its exit); stop it if it takes too long.

        Also returns once a sender that died (a non-zero exit code) has left the listener
        nothing to read for a moment: one killed while writing a report leaves half of it in
        the pipe, and the listener thread, blocked on reading it, would never finish. A sender
        that ended normally is not taken for dead however long its reports take to replay.
        """
        if threading.current_thread() is self._listener:
            # A reporter's close() on the listener thread: the sender's last reports can only
            # be read once that reporter returns. Waiting here would wait for itself, then take
            # the sender's normal end for a death (its DONE unread) and count its records lost.
            # The same bounded wait runs on a thread of its own instead: it stops the sender at
            # the deadline (the interpreter's exit joins it without a bound) and reaps it.
            threading.Thread(
                target=self.wait_until_finished,
                args=(timeout,),
                name=f"mixpanel-{self._context.name}-stop",
                daemon=True,
            ).start()
            return self._finished.is_set()
        interval = self._channel.options.check_interval
        started = time.monotonic()
        deadline = started + timeout
        quiet_since: float | None = None
        handled = -1
        process = self._process
        while not self._finished.wait(min(interval, max(deadline - time.monotonic(), 0))):
            now = time.monotonic()
            # A sender that ended normally (exit code 0) left its DONE in the report queue:
            # its reports are read, however slowly the hooks take them, until the deadline.
            # One that died may have left half a report there, which the listener would wait
            # on forever: it counts as dead once the listener has read nothing for a moment.
            # (Ended by its sentinel: one reaped by another part of this process, as
            # gunicorn's master reaps every child, keeps the exit code None; review R69 F3.)
            if process is not None and _ended(process, 0) and process.exitcode != 0:
                if self._handled != handled:
                    handled, quiet_since = self._handled, now
                elif quiet_since is not None and now - quiet_since > DONE_GRACE:
                    self._recover_after_death()
                    break
            if now >= deadline:
                break
        finished = self._finished.is_set()
        if process is not None:
            if not _ended(process, interval if finished else 0):
                waited = time.monotonic() - started
                logger.error("%s did not stop in %.1fs; terminating it", self._describe(), waited)
                self._terminated = True
                _terminate(process)
                process.join(interval)
                self._account_for_lost("it was terminated")
            else:
                process.join(interval)  # reaps it at once (it ended), unless another thread did
                replaying = not finished and process.exitcode in (0, None)  # None: reaped elsewhere
                if replaying and not self._replaying_at_exit:
                    self._account_for_lost(
                        f"it ended, but its last reports were still being replayed here after "
                        f"{timeout:.1f}s (the mixpanel_delivered hooks took longer than that)"
                    )
        self._listener.join(interval)
        return finished

    def on_listener_thread(self) -> bool:
        """Whether this is the thread that reads the sender's reports (a reporter's call)."""
        return threading.current_thread() is self._listener

    def terminate_at(self, deadline: float) -> None:
        """Terminate the sender at ``deadline`` (``time.monotonic()``) if it still runs then,
        and count what it held; for a thread of its own, while the exit waits for it."""
        process = self._process
        if process is None:
            return
        if _ended(process, max(deadline - time.monotonic(), 0)):
            return
        with self._terminating:
            # Once: an exit close interrupted after it started this thread leaves the last
            # resort to start another, with the same deadline (one line for one loss).
            if self._terminated:
                return
            self._terminated = True  # first: replay_by, waking about now, leaves it to this
        logger.error("%s still ran at the exit's deadline; terminating it", self._describe())
        _terminate(process)
        self._account_for_lost("it was terminated")

    def replay_by(self, deadline: float, *, last: bool = True) -> None:
        """At exit, with the sender asked to stop by a close still under way on a daemon
        thread, or by an exit close a signal interrupted: wait until its last reports are
        replayed to the hooks, up to ``deadline``, or say how many were not.

        The listener is a daemon thread, which the interpreter freezes once the exit clean-ups
        are over: multiprocessing's own joins the sender, and returned as the sender ended,
        with the listener part-way through its last reports (0 of 20,000 passed on, without a
        word). The process waits for the sender until about then anyway.

        ``last``: no later step of the exit waits again, should a signal interrupt this one.
        """
        self._replaying_at_exit = True
        # A moment past the deadline: terminate_at, on its own thread with the same deadline,
        # terminates a sender still running then, and says what that lost (one line a loss).
        wait = max(deadline - time.monotonic(), 0) + self._channel.options.check_interval
        try:
            if self._finished.wait(wait) or self._terminated:
                return
        except BaseException:
            # A signal (a second SIGTERM). If a later step waits again, that one says what is
            # left then (said now, it counted as lost reports that reached the hooks after);
            # otherwise the exit goes on without waiting, and what was not passed on is said.
            if last:
                self._account_for_lost(
                    "the exit was interrupted while the last reports were passed to the "
                    "mixpanel_delivered hooks; those not passed on yet may never be"
                )
            raise
        self._account_for_lost(
            "its last reports were still being passed to the mixpanel_delivered hooks at the "
            "exit's deadline, and are not passed on"
        )

    def ended(self) -> bool:
        """Whether the sender process ended (or was never started here)."""
        return self._process is None or _ended(self._process, 0)

    def _account_for_lost(self, why: str) -> None:
        """Say how many records died with the sender: their messages were in that process,
        so only the count is left to report."""
        self.unaccounted = self.unsettled()
        if self.unaccounted == 0:
            return
        logger.error("%s: %s; %s", self._describe(), why, self.describe_unsettled())

    # -- the listener thread ------------------------------------------------------------------

    def _listen(self) -> None:
        try:
            self._listen_until_done()
        except Exception:
            logger.exception("%s: the report listener failed", self._context.path)
        finally:
            # Whatever happened, close() must not wait for a listener that is gone.
            self._finished.set()

    def _listen_until_done(self) -> None:
        reports = self._channel.reports
        while True:
            try:
                item = reports.get(timeout=self._channel.options.check_interval)
            except queue.Empty:
                if not self._sender_died():
                    continue
                # Its last items may have landed just after the timeout: read them first.
                if not self._drain_last_items():
                    self._recover_after_death()
                return
            except (EOFError, OSError):
                return
            if self._handle(item):
                return

    def _drain_last_items(self) -> bool:
        """Handle what the exited sender left; True if that included its DONE."""
        while True:
            try:
                item = self._channel.reports.get(timeout=self._channel.options.check_interval)
            except queue.Empty:
                return False
            if self._handle(item):
                return True

    def _handle(self, item: tuple[object, ...]) -> bool:
        """Act on one item from the sender; True once it was the last one (DONE)."""
        self._handled += 1
        kind = item[0]
        if kind == REPORTS:
            for encoded in item[1]:  # type: ignore[attr-defined]
                self._context.report(decode_report(encoded))
                self._settled += 1
                self._handled += 1  # progress, for wait_until_finished, report by report
            self._check_settled()
        elif kind == FLUSHED:
            _, token, undelivered, error, taken = cast(
                "tuple[str, int, int, str | None, int]", item
            )
            if not undelivered and error is None:
                # Whoever asked (a late answer too): what it had taken has its outcome.
                self._settled_by_flush = max(self._settled_by_flush, taken)
            with self._answers:
                if token in self._waiting:
                    self._answered[token] = FlushAnswer(undelivered, error)
                    self._answers.notify_all()
        elif kind == FATAL:
            # Keep the first cause: a drain that died may be followed by a close that fails.
            self.failure = str(item[1]) if self.failure is None else f"{self.failure}; {item[1]}"
            logger.error("%s: %s", self._describe(), item[1])
        elif kind == CUT:
            self.cut += item[2]  # type: ignore[operator]
            logger.warning(
                "%s: producer pid %s stopped in the middle of writing a frame (it was killed, "
                "gave up at a deadline, or a signal interrupted the write, when it reports them "
                "FAILED itself); the %s records of that frame were discarded",
                self._context.path,
                item[1],
                item[2],
            )
        elif kind == DONE:
            self.counts = item[1]  # type: ignore[assignment]
            self._given_up = item[2]  # type: ignore[assignment]
            if item[3]:
                # It failed (its FATAL said why): what it took may have no report. (Unless it
                # was terminated, which said so: its DONE may still come, sent as it stopped.)
                if not self._terminated:
                    self._account_for_lost("it failed")
            else:
                self._account_for_never_taken()
            self._finished.set()
            return True
        return False

    def _account_for_never_taken(self) -> None:
        """After the sender finished: say how many records producers started writing that
        it never took (a producer killed while writing a frame, or still writing when the
        sender stopped); they are lost."""
        never_taken = self._channel.never_taken()
        if never_taken:
            self.unaccounted = (self.unaccounted or 0) + never_taken
            logger.error(
                "%s: %d records written by producers never reached %s: lost with producers "
                "killed while writing them, or written after the sender stopped (or reported "
                "FAILED by their producer, when a signal interrupted its write)",
                self._context.path,
                never_taken,
                self._describe(),
            )

    def _sender_died(self) -> bool:
        process = self._process
        if process is not None:
            return _ended(process, 0)
        return not self._channel.sender_alive()

    def _recover_after_death(self) -> None:
        """Tell producers (they then fall back or raise) and say what happened.

        What the dead sender held, and what is still in the queue, is lost: a process killed
        while reading may have left half a frame in the pipe, so reading on could hang.
        """
        with self._answers:
            if self._death_noticed:
                return
            self._death_noticed = True
        self._channel.mark_sender_gone()
        process = self._process
        code = process.exitcode if process is not None else None
        if self.failure is None:
            how = f"exit code {code}"
            if process is not None and code is None:
                how = "exit code unknown: another part of this process reaped it"
            self.failure = f"{self._describe()} died ({how})"
        if not self._terminated:  # its loss was logged then: one line for one loss
            self.unaccounted = self.unsettled()
            if self.unaccounted == 0:
                lost = "nothing it took or was queued is without an outcome"
            else:
                # Not all lost: some of what it held may have been sent, and applied, before
                # it died; none will be reported (review R59 F3).
                lost = (
                    "what it held and what was still queued has no outcome and will get none "
                    f"(some may have been applied before it died: {self.describe_unsettled()})"
                )
            logger.error("%s; %s; producers will %s", self.failure, lost, self._outcome())
        self._finished.set()

    def _outcome(self) -> str:
        fallback = self._channel.options.fallback
        return f"use the fallback {fallback!r}" if fallback else "raise TransportError"

    def _describe(self) -> str:
        return self._channel.describe_sender()


def _terminate(process: BaseProcess) -> None:
    """SIGKILL: the sender ignores SIGTERM (see ``run_sender``), and one stopped (SIGSTOP, a
    debugger) or stuck in C code would keep multiprocessing's exit clean-up waiting for it
    without a bound."""
    process.kill()


def _ended(process: BaseProcess, timeout: float) -> bool:
    """Whether the sender ``process`` ended, within ``timeout``, by its sentinel. Not join(),
    is_alive() or exitcode: they reap it, and at exit multiprocessing's clean-up on the main
    thread reaps it too; of two threads reaping one process, the loser is told it still runs
    (a sender that had stopped was then called hung, and "terminated")."""
    try:
        return bool(multiprocessing.connection.wait([process.sentinel], timeout))
    except ValueError:  # closed (Process.close()), which only an ended process allows
        return True
