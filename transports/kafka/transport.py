"""``KafkaTransport``: the ``kafka`` transport's interface (see the package docstring)."""

from __future__ import annotations

import functools
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from mixpanel_core.delivery import Reporter
from mixpanel_core.errors import ConfigError, TransportError
from mixpanel_core.frozen import EMPTY
from mixpanel_core.kafka.options import KafkaOptions, check_transport_options
from mixpanel_core.messages import ENDPOINTS, Message
from mixpanel_core.process_exit import CLOSE_FLOOR, at_exit, exit_time_left, owned
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.schema import key_error, read
from mixpanel_core.transport import (
    TransportContext,
    bounded,
    ignore_report,
    tell_auth_not_carried,
)

from .acknowledgements import Acknowledgements
from .health import ProducerHealth, unrecoverable
from .network_thread import on_network_thread
from .producer import build_producer, close_producer, headers_for, hurried, release_producer
from .replacement import ProducerReplacement
from .reports import Reports
from .settlement import Settlement
from .watchdog import WATCHDOG

_getpid = os.getpid  # once per send: saves the attribute lookup

ROOM_POLL_INTERVAL = 0.005
"""Seconds between two looks at the count while ``send()`` waits under ``max_unacknowledged``."""


class KafkaTransport:
    """Produces messages to ``topic``; see the package docstring for keys, values and headers."""

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        topic: str,
        producer_options: Mapping[str, Any] = EMPTY,
        *,
        max_unacknowledged: int = 100_000,
        flush_timeout: float = 30.0,
        close_timeout: float = 30.0,
        exit_timeout: float = 5.0,
        name: str = "kafka",
        report: Reporter = ignore_report,
    ) -> None:
        try:
            check_transport_options(
                bootstrap_servers,
                topic,
                max_unacknowledged=max_unacknowledged,
                flush_timeout=flush_timeout,
                close_timeout=close_timeout,
                exit_timeout=exit_timeout,
            )
        except ValueError as exc:
            raise key_error(f"transports.{name}", exc, attrs.fields_dict(KafkaOptions)) from None
        self._topic = topic
        self._name = name
        self._max_unacknowledged = max_unacknowledged
        self._flush_timeout = flush_timeout
        self._close_timeout = close_timeout
        self._exit_timeout = exit_timeout
        self._reports = Reports(name, report)
        self._acks = Acknowledgements(self._reports)
        self._replacement = ProducerReplacement(
            functools.partial(build_producer, bootstrap_servers, producer_options, name),
            self._acks,
            self._reports,
        )
        self._producer: Any = self._replacement.build()
        self._max_block = self._producer.config["max_block_ms"] / 1000
        self._health = ProducerHealth(
            self._max_block, self._producer.config["delivery_timeout_ms"] / 1000
        )
        self._broken: str | None = None
        """Why ``_producer`` must be replaced (it can no longer deliver); see ``_watch``."""
        self._pid = _getpid()
        """The process that owns ``_producer`` and the records in ``_acks``; see
        ``_own_producer``."""
        self._owning = threading.Lock()
        """Held while a ``fork()`` child leaves the parent's producer and builds its own: one
        thread does, once (see ``_own_producer``)."""
        in_fork_children(self, KafkaTransport._after_fork_in_child)
        self._headers = {endpoint: headers_for(endpoint) for endpoint in ENDPOINTS}
        self._closed = False
        me = weakref.ref(self)
        # Registered after the producer, whose own exit hook build_producer removed: this is
        # the one clean-up at exit, and it reports what it gives up on. A weak reference loses
        # nothing: each record not yet acknowledged is held by the producer's sender thread,
        # and its future's callbacks hold this transport, so a transport dropped without
        # close() lives on (and is closed at exit) until every record it sent is settled.
        self._cancel_exit_close: Callable[[], None] = at_exit(
            owned(self, lambda: _close_at_exit(me))
        )
        self._release_producer_when_dropped()
        WATCHDOG.watch(self)

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> KafkaTransport:
        opts = read(KafkaOptions, options, context.path)
        return cls(
            opts.bootstrap_servers,
            opts.topic,
            opts.producer,
            max_unacknowledged=opts.max_unacknowledged,
            flush_timeout=opts.flush_timeout,
            close_timeout=opts.close_timeout,
            exit_timeout=opts.exit_timeout,
            name=context.name,
            report=context.report,
        )

    @property
    def topic(self) -> str:
        return self._topic

    def send(self, message: Message) -> None:
        """Hand ``message`` to the producer; the report follows the broker's acknowledgement.

        Raises ``TransportError`` (after reporting the message FAILED) when the producer refuses
        it, or when ``max_unacknowledged`` messages still wait after ``max_block_ms``.
        """
        acks = self._acks
        # One test for the rare cases, so the usual send pays for a single branch.
        if (
            self._closed
            or self._pid != _getpid()
            or self._broken is not None
            or len(acks.unacknowledged) >= self._max_unacknowledged
            or message.auth is not None
        ):
            self._before_send(message)
        number = acks.next_number()
        # A dict item assignment is atomic; the lock is only for the flush condition.
        acks.unacknowledged[number] = message
        key = message.key
        try:
            future = self._producer.send(
                self._topic,
                value=message.json(),  # the bytes validation measured: encoded once
                # backslashreplace: a distinct_id may hold a lone surrogate (os.fsdecode),
                # which UTF-8 cannot carry; written as the escape its JSON carries.
                key=key.encode("utf-8", "backslashreplace") if key else None,
                headers=self._headers[message.endpoint],
            )
        except Exception as exc:  # no metadata within max_block_ms, record too large, ...
            self._failed(number, exc)
            raise TransportError(
                f"transport {self._name!r} could not produce to {self._topic!r}: {exc}"
            ) from exc
        settle = Settlement(self, number)
        future.add_callback(settle)
        future.add_errback(settle)
        settle.attached = True

    def _before_send(self, message: Message) -> None:
        """Refuse once closed; say once that per-call credentials stay behind; own a working
        producer in this process; wait for room under the bound."""
        if self._closed:
            raise TransportError(f"transport {self._name!r} is closed")
        if message.auth is not None:
            tell_auth_not_carried(self._name, "the forwarder's [mixpanel] settings")
        try:
            self._own_producer()
        except (ConfigError, TransportError) as exc:
            self._reports.failed(message, f"not sent: no producer in this process: {exc}")
            raise
        if self._broken is not None:
            self._replacement.before_send(self, message)
        if len(self._acks.unacknowledged) >= self._max_unacknowledged:
            self._wait_for_room(message)

    def _wait_for_room(self, message: Message) -> None:
        limit = self._max_unacknowledged
        if on_network_thread():
            # From a report on a producer's network thread, which never waits: its own
            # producer's acknowledgements cannot arrive meanwhile, and another's may wait for it.
            self._refuse_for_room(
                message,
                "on a Kafka producer's network thread (a delivery report), which "
                "does not wait for acknowledgements",
            )
        deadline = time.monotonic() + self._max_block
        # Polled rather than notified: a notification per acknowledgement had the producer's
        # thread and this one trade the interpreter on every record while at the bound (10%
        # fewer records per second in a burst, benchmarks/bench_kafka.py); a poll lets a few
        # milliseconds of acknowledgements in at once.
        while len(self._acks.unacknowledged) >= limit and not self._closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(ROOM_POLL_INTERVAL, left))
        self._refuse_for_room(message, f"after max_block_ms ({self._max_block * 1000:g} ms)")

    def _refuse_for_room(self, message: Message, when: str) -> None:
        """Raise if closed; else, still at the bound, report ``message`` FAILED and raise."""
        if self._closed:
            raise TransportError(f"transport {self._name!r} is closed")
        if len(self._acks.unacknowledged) < self._max_unacknowledged:
            return
        reason = (
            f"not sent: {self._max_unacknowledged} messages still waited for Kafka's "
            f"acknowledgement (max_unacknowledged) {when}"
        )
        self._reports.failed(message, reason)
        raise TransportError(
            f"transport {self._name!r}: {reason}; is the broker reachable? Raise "
            "max_unacknowledged or the producer's max_block_ms to hold or wait for more"
        )

    def _own_producer(self) -> None:
        """Make sure this process sends through a producer of its own, built on first use.

        Built once, under ``_owning``: a ``fork()`` child's threads sending at once each built
        one, and only the last stayed in ``_producer``; the others, never closed nor hurried
        by ``flush()``, kept their threads and connections for the life of the worker, and
        what lingered in them waited out every ``flush()`` (review R70 F2).
        """
        if self._pid == _getpid():
            return
        with self._owning:
            if self._pid == _getpid():
                return  # built by another thread while this one waited
            self._leave_inherited()
            new = self._replacement.build()
            if self._closed:
                # close() began during the build and gave up waiting for it: nobody else
                # would close this producer.
                close_producer(new, timeout=0)
                raise TransportError(f"transport {self._name!r} is closed")
            self._producer = new
            self._broken = None
            self._health.forget()
            self._replacement.after_fork()
            self._release_producer_when_dropped()
            # Last: a thread that sees this process's pid here sends without taking the lock,
            # so everything above must be in place by then.
            self._pid = _getpid()
            WATCHDOG.watch(self)  # the parent's watchdog thread did not survive the fork

    def _after_fork_in_child(self) -> None:
        """In a ``fork()`` child: new locks, since one a parent's thread held at the fork would
        stay held for ever. The producer's network thread takes the acknowledgements' lock for
        every record it settles, and ``close()`` takes it first: a worker forked while the
        parent produced hung in its first ``close()``, at its exit too. The parent's records
        are the parent's to report: the child forgets them with the old lock."""
        self._owning = threading.Lock()
        self._acks.reset()

    def _release_producer_when_dropped(self) -> None:
        # Once settled, a transport dropped without close() is freed, most often on the
        # producer's sender thread as it drops the last record's callbacks. KafkaProducer's
        # own __del__ would then close it from that thread: stall it 1 s on a flush waiting
        # for itself, print KafkaTimeoutError and leave it running, connections open.
        release = weakref.finalize(self, release_producer, self._producer, self._cancel_exit_close)
        release.atexit = False  # at exit, the bounded close does it
        self._release = release

    def _owns_records(self, deadline: float) -> bool:
        """Whether this process produced anything (a ``fork()`` child may not have yet).

        In a child whose producer another thread is building, waits for that build until
        ``deadline`` (``time.monotonic()``), so that ``flush()`` and ``close()`` reach the
        producer built; ``False`` if it is not built by then (nothing sent through it yet).
        """
        if self._pid == _getpid():
            return True
        if not self._owning.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            return False
        try:
            if self._pid == _getpid():
                return True
            self._leave_inherited()
            return False
        finally:
            self._owning.release()

    def _leave_inherited(self) -> None:
        """In a ``fork()`` child, under ``_owning``: drop the parent's producer and
        unacknowledged records (never this process's: once its producer is built, ``_pid``
        is this process's and nothing calls this).

        The producer's sender thread did not survive the fork, and the records it holds are
        the parent's to send and report. The producer is not closed: its close would wait for
        that thread. ``_pid`` stays the parent's until this process has a producer of its own.
        """
        inherited, self._producer = self._producer, None
        if inherited is not None:
            # Marked closed, so neither its close() nor its __del__ waits for its records.
            inherited._closed = True
            self._acks.reset()

    def _watch(self, now: float) -> None:
        """One look of the watchdog: replace the producer if it can no longer deliver
        (``ProducerHealth.why_broken`` says when)."""
        if self._closed or self._pid != _getpid():
            return
        if self._broken is None:
            broken = self._health.why_broken(self._producer, self._acks.unacknowledged, now)
            if broken is None:
                return
            self._broken = broken
        self._replacement.in_background(self)

    def _use_replacement(self, new: Any) -> None:
        """Send through ``new`` from now on, in place of the broken producer."""
        self._producer = new
        self._release.detach()
        self._release_producer_when_dropped()
        self._broken = None
        self._health.forget()

    def _failed(self, number: int, exc: BaseException) -> None:
        if self._broken is None and self._pid == _getpid():
            broken = unrecoverable(self._producer)
            if broken is not None:
                # Replaced by the next send() or the watchdog, never here: this may be the
                # producer's network thread, which never waits (a build may wait for a broker).
                self._broken = broken
                WATCHDOG.wake()
        self._acks.failed(number, exc)

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        """Send what lingers now; wait up to ``timeout`` (default ``flush_timeout``) for acks.

        Returns the messages still held by then: not yet acknowledged or refused by the broker,
        or whose report is still being made; a message is off this list only once its report
        (ACCEPTED, or FAILED when the producer gave up on it) has been made. ``flush(0)`` only
        looks. Called from a report, it neither waits for nor returns the messages that report
        is about, and waits for acknowledgements only, not for other threads' reports; on a
        Kafka producer's network thread it does not wait at all (see the package docstring).
        Once ``close()`` has started it still waits (for what that close has not settled yet)
        and returns what is held. ``timeout`` is a number of seconds from 0 to
        ``MAX_SECONDS``, else ``ValueError``.
        """
        bound = bounded(timeout, self._flush_timeout)
        deadline = time.monotonic() + bound
        if not self._owns_records(deadline):
            return ()
        if bound > 0 and not on_network_thread():
            if self._closed:  # close() is hurrying the producer, or has closed it
                self._acks.wait(deadline)
            else:
                with hurried(self._producer):
                    self._acks.wait(deadline)
        return self._acks.still_held()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        """Flush within ``timeout`` (default ``close_timeout``), then close the producer.

        What the broker has not acknowledged by then is reported FAILED (here, before the
        producer is stopped, so exactly once and always with the same reason), counted in a
        warning, and returned. The waits (for acknowledgements and reports, then for the
        producer to close) share ``timeout``; only the FAILED reports it makes itself take
        longer. From the moment it starts, ``send()`` raises. On a Kafka producer's network
        thread (a delivery report) it does not wait: it gives up at once on what is
        unacknowledged. ``timeout`` is checked as in ``flush()``.
        """
        bound = bounded(timeout, self._close_timeout)
        return self._close(bound, f"within close()'s {bound:g}s")

    def _close(self, bound: float, within: str) -> Sequence[Message]:
        with self._acks.lock:  # one close only, also when a report and a user thread race to it
            if self._closed:
                return ()
            self._closed = True
        self._cancel_exit_close()
        deadline = time.monotonic() + bound
        if not self._owns_records(time.monotonic() if on_network_thread() else deadline):
            return ()
        if on_network_thread():
            # From a report on a producer's network thread, which never waits: on its own
            # producer nothing is acknowledged until the report returns (and its close would
            # wait for this very thread); another's network thread may be waiting for this one.
            left = self._acks.give_up(
                "before close() was called from a delivery report on a Kafka producer's "
                "network thread"
            )
            close_producer(self._producer, timeout=0)
            return left
        with hurried(self._producer):
            self._acks.wait(deadline)
        left = self._acks.give_up(within)
        close_producer(self._producer, timeout=0 if left else max(deadline - time.monotonic(), 0.0))
        return left

    def _close_at_exit(self) -> None:
        # Counted from the start of exit, not from this close (review R70 F3): the exit closes
        # run one after another, and two kafka transports each waiting their whole
        # exit_timeout took the sum of them, beyond a grace period sized on exit_timeout. Never
        # less than a short floor, as buffered_http's: a transport closed after a stalled one
        # still gets a healthy broker's acknowledgements, which take it milliseconds.
        bound = self._exit_timeout
        self._close(
            max(exit_time_left(bound), min(bound, CLOSE_FLOOR)),
            f"within the {bound:g}s exit_timeout at exit",
        )


def _close_at_exit(ref: weakref.ref[KafkaTransport]) -> None:
    transport = ref()
    if transport is not None:
        transport._close_at_exit()
