"""``kafka``: produces each message to a Kafka topic; the forwarder delivers it to Mixpanel.

The record key is ``message.key`` (the distinct id, or ``group_key:group_id``) so one identity's
messages stay in order on one partition; the value is the wire record as compact JSON; headers
carry the endpoint, the schema version and the library version (``mixpanel_core.kafka.headers``).
A message is reported ACCEPTED only once the broker acknowledged it, FAILED when the producer
gives up on it. Per-call legacy ``/import`` credentials (``import_data(api_key=...)``) do not
travel through Kafka: the forwarder authenticates with its own ``[mixpanel]`` settings.

At most ``max_unacknowledged`` messages wait for acknowledgement (kafka-python 3.0's producer
has no memory bound of its own). ``flush()`` and ``close()`` make lingering records leave at
once; a message counts as settled for them only once its report has been made (also the
FAILED reports a ``close()`` on another thread is making), so when ``flush()`` returns nothing,
every message sent before it has its report. A reporter that calls them (on any kafka
transport) neither waits for nor gets back the message it is reporting, and waits for
acknowledgements only, never for reports other threads are making (two reporters would wait
for each other).

One rule keeps waits from forming a cycle: **a Kafka producer's network thread never waits.**
The report of an acknowledgement (or of a failure the producer reports after ``send()``
returned; one ``KafkaProducer.send`` raises is reported on the sending thread) runs on the
network thread of the producer that sent the message, and no acknowledgement reaches that
producer while it runs. From such a thread (any kafka-python producer's, so any kafka
transport's reports), ``flush()`` of any kafka transport returns at once what is still held,
``close()`` gives up at once on what is unacknowledged and closes its producer without waiting,
and ``send()`` that finds ``max_unacknowledged`` messages waiting refuses the message at once
(FAILED, ``TransportError``) instead of waiting for room. (One wait is kafka-python's own: the
first ``send()`` to a topic whose metadata the producer does not have yet waits for it, up to
the producer's ``max_block_ms``.) Every other wait is for acknowledgements, which network
threads then always make progress on. ``close()`` stays within its timeout (only the FAILED
reports it makes itself take longer): when that runs out it takes everything still
unacknowledged at once, so no report of an acknowledgement begins after that; a report another
thread began before and is still making when ``close()`` returns (a reporter slower than the
time left) ends later, and its message is not returned.
A bounded close runs at interpreter exit, also for a transport dropped without ``close()`` (it
lives until what it sent is settled). It waits for reports in progress within ``exit_timeout``
too, but not beyond: a report still being made on the producer's thread (or another daemon
thread) when it returns may not complete, as the interpreter ends those threads with it, and
its message is not counted in the warning. After ``fork()`` the child leaves the parent's
producer and records to the parent and builds its own producer.

A producer that can no longer deliver (kafka-python's fatal error state; an idempotent one that
lost its producer id and never asks for another; one holding a record past
``delivery_timeout_ms`` plus ``max_block_ms`` plus ``STUCK_MARGIN``) is replaced by a new one
with the same options: found when a record fails and by a watchdog thread once a second,
replaced on the next ``send()`` (never on a network thread) or by the watchdog; what the old
one held is reported FAILED, each message once (see ``_replace_producer``).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.errors import ConfigError, TransportError
from mixpanel_core.frozen import EMPTY
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client
from mixpanel_core.kafka.options import KafkaOptions, check_transport_options, client_options
from mixpanel_core.messages import ENDPOINTS, Message
from mixpanel_core.process_exit import at_exit
from mixpanel_core.schema import read
from mixpanel_core.transport import (
    TransportContext,
    bounded,
    ignore_report,
    tell_auth_not_carried,
)
from mixpanel_core.version import __version__

logger = logging.getLogger(__name__)
_getpid = os.getpid  # once per send: saves the attribute lookup
_get_ident = threading.get_ident
_current_thread = threading.current_thread

_in_report = threading.local()
"""``depth``: how many delivery reports of any kafka transport this thread is making now. Such a
thread's ``flush()`` and ``close()`` wait for acknowledgements only, never for reports other
threads are making: two reporters each waiting for the other's report waited out their timeouts
(two refused sends, or two transports' producer threads each flushing both transports)."""


def _on_network_thread() -> bool:
    """Whether this is a kafka-python producer's network (sender) thread, of any transport.

    Reports of acknowledgements and producer errors run there: it must never wait, since no
    acknowledgement reaches its producer meanwhile (and another thread waiting on it may be
    what it would wait for). Checked only where a wait would begin, never per record.
    """
    return isinstance(_current_thread(), kafka_python().producer.sender.Sender)


ROOM_POLL_INTERVAL = 0.005
"""Seconds between two looks at the count while ``send()`` waits under ``max_unacknowledged``."""

DURABLE_PRODUCER_DEFAULTS: Mapping[str, Any] = {"acks": "all", "enable_idempotence": True}
"""Stored by every in-sync replica, written once per send; ``producer = {...}`` may override."""

STUCK_MARGIN = 5.0
"""Seconds past the producer's ``delivery_timeout_ms`` after which a record it still holds, with
neither an acknowledgement nor a failure, means the producer is stuck: it is replaced (below)."""

WATCH_INTERVAL = 1.0
"""Seconds between two looks of the watchdog at each transport's producer and oldest record."""

TRANSPORT_OWNED_OPTIONS: Mapping[str, str] = {
    "bootstrap_servers": "set by the transport's own bootstrap_servers key",
    "key_serializer": "the transport writes the record's key itself",
    "value_serializer": "the transport writes the record's value itself",
    "transactional_id": "the transport does not use transactions (every send would fail)",
}
"""Producer options the transport decides; given in ``producer``, they would be ignored or break
every send, so they are refused with the reason."""


class KafkaTransport:
    """Produces messages to ``topic``; see the module docstring for keys, values and headers."""

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
            raise ConfigError(f"transports.{name}: {exc}") from None
        self._topic = topic
        self._name = name
        self._report = report
        self._max_unacknowledged = max_unacknowledged
        self._flush_timeout = flush_timeout
        self._close_timeout = close_timeout
        self._exit_timeout = exit_timeout
        self._new_producer = functools.partial(
            _build_producer, bootstrap_servers, producer_options, name
        )
        self._producer: Any = self._new_producer()
        self._max_block = self._producer.config["max_block_ms"] / 1000
        self._stuck_after = (
            self._producer.config["delivery_timeout_ms"] / 1000 + self._max_block + STUCK_MARGIN
        )
        """Seconds a record may stay unanswered before its producer counts as stuck: a healthy
        producer may wait ``max_block_ms`` in ``send()`` (for metadata) before its own
        ``delivery_timeout_ms`` starts."""
        self._broken: str | None = None
        """Why ``_producer`` must be replaced (it can no longer deliver); see ``_watch``."""
        self._suspect: Any = None
        """The producer seen without a producer id at the last look (stuck if seen twice)."""
        self._ages: collections.deque[tuple[float, int]] = collections.deque()
        """(time, newest send number then), one per watchdog look while records are held."""
        self._build_failure: str | None = None
        """Why the last build of a replacement failed; sends fail at once until one succeeds."""
        self._build_failures = 0
        """Builds of a replacement that failed: a send that waited for another's build to fail
        does not build again (N threads would each wait ``max_block_ms`` in turn)."""
        # Reentrant: a reporter of what a replacement gives up on may send on the same thread.
        self._replacing = threading.RLock()
        self._rebuilding: threading.Thread | None = None
        """The thread replacing the producer for the watchdog, while it builds (see ``_watch``)."""
        self._pid = _getpid()
        """The process that owns ``_producer`` and ``_unacknowledged``; see ``_own_producer``."""
        self._headers = {endpoint: _headers_for(endpoint) for endpoint in ENDPOINTS}
        self._next_number = itertools.count().__next__
        self._reset_acknowledgements()
        self._closed = False
        me = weakref.ref(self)
        # Registered after the producer, whose own exit hook _build_producer removed: this is
        # the one clean-up at exit, and it reports what it gives up on. A weak reference loses
        # nothing: each record not yet acknowledged is held by the producer's sender thread,
        # and its future's callbacks hold this transport, so a transport dropped without
        # close() lives on (and is closed at exit) until every record it sent is settled.
        self._cancel_exit_close: Callable[[], None] = at_exit(lambda: _close_at_exit(me))
        self._release_producer_when_dropped()
        _WATCHDOG.watch(self)

    def _reset_acknowledgements(self) -> None:
        # Sent but not yet acknowledged, by send number; callbacks run on the producer's thread.
        self._unacknowledged: dict[int, Message] = {}
        # Settled but still being reported, with the thread reporting it: flush() waits for
        # these too, so a flush that found nothing held has every report made (a caller
        # counting reports, like the send and replay commands, saw a message neither reported
        # nor returned, and resent it); but not for those its own thread is reporting (a
        # reporter calling flush() or close() would wait for itself).
        self._reporting: dict[int, tuple[Message, int]] = {}
        # What close() gave up on and is reporting FAILED, with its thread and the number it
        # is reporting now: flush() waits for those reports too (or returns them; on the
        # closer's thread, all but the one being reported).
        self._giving_up: tuple[int, dict[int, Message]] = (0, {})
        self._giving_up_now = -1
        self._lock = threading.Lock()
        self._all_acknowledged = threading.Condition(self._lock)

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
        # One test for the rare cases, so the usual send pays for a single branch.
        if (
            self._closed
            or self._pid != _getpid()
            or self._broken is not None
            or len(self._unacknowledged) >= self._max_unacknowledged
            or message.auth is not None
        ):
            self._before_send(message)
        number = self._next_number()
        # A dict item assignment is atomic; the lock is only for the flush condition.
        self._unacknowledged[number] = message
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
        settle = _Settlement(self, number)
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
            self._report_failed(message, f"not sent: no producer in this process: {exc}")
            raise
        if self._broken is not None:
            self._replace_before_send(message)
        if len(self._unacknowledged) >= self._max_unacknowledged:
            self._wait_for_room(message)

    def _replace_before_send(self, message: Message) -> None:
        """Replace the broken producer before ``message`` goes to it, or refuse ``message``.

        Not on a network thread, which never waits (building may wait for a broker, up to
        ``max_block_ms``): the message goes to the broken producer, which fails it, and the
        watchdog replaces it. Once a build failed (no broker answered), sends are refused at
        once rather than each waiting for a broker; the watchdog tries again each second.
        """
        if _on_network_thread():
            return
        failure = self._build_failure
        if failure is None:
            try:
                self._replace_producer(unless_failed_since=self._build_failures)
                return
            except (ConfigError, TransportError) as exc:
                failure = str(exc)
        if self._broken is None:  # replaced meanwhile (by the watchdog)
            return
        reason = (
            f"not sent: its Kafka producer {self._broken}, and no new one could be built "
            f"yet: {failure}"
        )
        self._report_failed(message, reason)
        raise TransportError(f"transport {self._name!r}: {reason}")

    def _wait_for_room(self, message: Message) -> None:
        limit = self._max_unacknowledged
        if _on_network_thread():
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
        while len(self._unacknowledged) >= limit and not self._closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(ROOM_POLL_INTERVAL, left))
        self._refuse_for_room(message, f"after max_block_ms ({self._max_block * 1000:g} ms)")

    def _refuse_for_room(self, message: Message, when: str) -> None:
        """Raise if closed; else, still at the bound, report ``message`` FAILED and raise."""
        if self._closed:
            raise TransportError(f"transport {self._name!r} is closed")
        if len(self._unacknowledged) < self._max_unacknowledged:
            return
        reason = (
            f"not sent: {self._max_unacknowledged} messages still waited for Kafka's "
            f"acknowledgement (max_unacknowledged) {when}"
        )
        self._report_failed(message, reason)
        raise TransportError(
            f"transport {self._name!r}: {reason}; is the broker reachable? Raise "
            "max_unacknowledged or the producer's max_block_ms to hold or wait for more"
        )

    def _own_producer(self) -> None:
        """Make sure this process sends through a producer of its own, built on first use."""
        if self._pid != _getpid():
            self._leave_inherited()
            self._producer = self._new_producer()
            self._pid = _getpid()
            self._broken = self._suspect = self._build_failure = None
            self._ages.clear()
            self._replacing = threading.RLock()  # the parent's watchdog may have held it
            self._release_producer_when_dropped()
            _WATCHDOG.watch(self)  # the parent's watchdog thread did not survive the fork

    def _release_producer_when_dropped(self) -> None:
        # Once settled, a transport dropped without close() is freed, most often on the
        # producer's sender thread as it drops the last record's callbacks. KafkaProducer's
        # own __del__ would then close it from that thread: stall it 1 s on a flush waiting
        # for itself, print KafkaTimeoutError and leave it running, connections open.
        release = weakref.finalize(self, _release_producer, self._producer, self._cancel_exit_close)
        release.atexit = False  # at exit, the bounded close does it
        self._release = release

    def _owns_records(self) -> bool:
        """Whether this process produced anything (a ``fork()`` child may not have yet)."""
        if self._pid != _getpid():
            self._leave_inherited()
            return False
        return True

    def _leave_inherited(self) -> None:
        """In a ``fork()`` child: drop the parent's producer and unacknowledged records.

        The producer's sender thread did not survive the fork, and the records it holds are
        the parent's to send and report. The producer is not closed: its close would wait for
        that thread. ``_pid`` stays the parent's until this process has a producer of its own.
        """
        inherited, self._producer = self._producer, None
        if inherited is not None:
            # Marked closed, so neither its close() nor its __del__ waits for its records.
            inherited._closed = True
            self._reset_acknowledgements()

    def _watch(self, now: float) -> None:
        """One look of the watchdog: replace the producer if it can no longer deliver.

        It can no longer deliver when kafka-python put it in a fatal error state, when it lost
        its producer id for good (seen at two looks in a row), or when a record it holds was
        neither acknowledged nor failed within ``delivery_timeout_ms`` plus ``max_block_ms``
        plus ``STUCK_MARGIN`` (kafka-python expires nothing while an idempotent producer waits
        for a producer id).
        """
        if self._closed or self._pid != _getpid():
            return
        producer = self._producer
        if self._broken is None:
            broken = _unrecoverable(producer)
            if broken is None and _lost_producer_id(producer):
                if self._suspect is producer:
                    broken = (
                        "lost its producer id and never asks for another (kafka-python's "
                        "idempotent producer)"
                    )
                self._suspect = producer
            else:
                self._suspect = None
            if broken is None and self._held_too_long(now):
                broken = (
                    f"held a record for more than {self._stuck_after:g}s (delivery_timeout_ms "
                    f"plus max_block_ms plus {STUCK_MARGIN:g}s) without an acknowledgement or "
                    "a failure"
                )
            if broken is None:
                return
            self._broken = broken
        # Built on a thread of this transport's, not the watchdog's: a build waits up to
        # max_block_ms for a broker, and the watchdog looks after every kafka transport (one
        # whose cluster is down held another's recovery to one try per max_block_ms).
        rebuilding = self._rebuilding
        if rebuilding is None or not rebuilding.is_alive():
            self._rebuilding = threading.Thread(
                target=self._rebuild, name=f"mixpanel-core-kafka-rebuild-{self._name}", daemon=True
            )
            self._rebuilding.start()

    def _rebuild(self) -> None:
        """Replace the broken producer, for the watchdog (see ``_watch``)."""
        failed_before = self._build_failure is not None
        try:
            self._replace_producer()
        except (ConfigError, TransportError) as exc:
            # Said once per outage; the tries that follow, once a second, at DEBUG.
            (logger.debug if failed_before else logger.warning)(
                "transport %r: could not replace its Kafka producer (%s); trying again",
                self._name,
                exc,
            )
        except Exception:
            logger.exception("transport %r: replacing its Kafka producer failed", self._name)

    def _held_too_long(self, now: float) -> bool:
        """Whether the oldest unacknowledged record was sent ``_stuck_after`` seconds ago or more.

        Send numbers grow with time: the newest number at each look is kept, so a record whose
        number is at most the one seen ``_stuck_after`` seconds ago was sent before then. No
        clock is read per send.
        """
        ages = self._ages
        try:
            oldest = next(iter(self._unacknowledged))
            newest = next(reversed(self._unacknowledged))
        except (StopIteration, RuntimeError):  # none held, or changed while looked at
            if not self._unacknowledged:
                ages.clear()
            return False
        ages.append((now, newest))
        cutoff = now - self._stuck_after
        while len(ages) > 1 and ages[1][0] <= cutoff:
            ages.popleft()
        return ages[0][0] <= cutoff and oldest <= ages[0][1]

    def _replace_producer(self, unless_failed_since: int | None = None) -> None:
        """Put a new producer in place of the broken one, and settle what the old one held.

        Never on a producer's network thread (building may wait for a broker, up to
        ``max_block_ms``). The new producer is in place before the old one's records are
        taken: a send numbered after that point goes to the new one, so every record the old
        one was given is among those taken (or was settled already). Each taken record is
        reported FAILED once (``_claim`` decides, so a late answer of the old producer reports
        nothing), then the old producer is stopped without waiting. If no new producer can be
        built, the old one is still settled and stopped, and the next send or look tries again.
        """
        with self._replacing:
            reason = self._broken
            if reason is None or self._closed or self._pid != _getpid():
                return
            if unless_failed_since is not None and self._build_failures != unless_failed_since:
                # Another send's build failed while this one waited for the lock: no broker
                # answered just now, so this one fails at once rather than waiting again.
                raise TransportError(self._build_failure or "no new producer could be built")
            old = self._producer
            try:
                new = self._new_producer()
            except (ConfigError, TransportError) as exc:
                self._build_failure = str(exc)
                self._build_failures += 1
                self._retire(old, reason)
                raise
            self._producer = new
            self._release.detach()
            self._release_producer_when_dropped()
            self._broken = self._suspect = self._build_failure = None
            self._ages.clear()
            self._retire(old, reason)
            if self._closed:  # a close() began meanwhile and may have closed the old one only
                self._close_producer(timeout=0)
            logger.warning(
                "transport %r: replaced its Kafka producer, which %s", self._name, reason
            )

    def _retire(self, old: Any, reason: str) -> None:
        """Report FAILED what ``old`` still holds (once), then stop it without waiting."""
        if getattr(old, "_closed", True):
            return  # retired already (a build failed after it was), or being retired
        old._closed = True  # its send() now raises, and neither close() nor __del__ waits
        boundary = self._next_number()
        taken = [number for number in self._unacknowledged.copy() if number < boundary]
        why = (
            f"not acknowledged by Kafka before the transport replaced its producer, which "
            f"{reason}; it may be resent"
        )
        # All claimed, and the old producer stopped, before any is reported: a reporter's
        # flush() waits for acknowledgements the old producer would never send (one report
        # after another, each waiting its whole timeout), and its network thread would keep
        # failing what it holds meanwhile.
        claimed = [(n, m) for n in taken if (m := self._claim(n)) is not None]
        sender = getattr(old, "_sender", None)
        if sender is not None and sender.is_alive():
            sender.force_close()  # fails what it holds: those records are claimed already
        failed = len(claimed)
        for number, message in claimed:
            try:
                self._report_failed(message, why)
            except Exception:
                logger.exception(
                    "transport %r: the delivery reporter failed on a message its replaced "
                    "producer held",
                    self._name,
                )
            finally:
                self._reported(number)
        if failed:
            logger.warning(
                "transport %r: %d message(s) its broken Kafka producer held, reported FAILED",
                self._name,
                failed,
            )

    def _acknowledged(self, number: int, _metadata: object) -> None:
        if self._report is ignore_report:
            self._settle(number)  # nobody reads reports: nothing to wait for after the pop
            return
        message = self._claim(number)
        if message is not None:
            try:
                self._make_report(
                    DeliveryReport(message, DeliveryStatus.ACCEPTED, self._name, attempts=1)
                )
            finally:
                self._reported(number)

    def _failed(self, number: int, exc: BaseException) -> None:
        if self._broken is None and self._pid == _getpid():
            broken = _unrecoverable(self._producer)
            if broken is not None:
                # Replaced by the next send() or the watchdog, never here: this may be the
                # producer's network thread, which never waits (a build may wait for a broker).
                self._broken = broken
                _WATCHDOG.wake()
        message = self._claim(number)
        if message is not None:
            try:
                self._report_failure(message, exc)
            finally:
                self._reported(number)

    def _claim(self, number: int) -> Message | None:
        """Take record ``number`` out of the unacknowledged to report it; ``None`` when a
        ``close()`` giving up on it took it first (and reports it itself).

        Until ``_reported``, the record is in ``_reporting``: it enters that before it leaves
        ``_unacknowledged``, so ``flush()`` never sees it in neither while its report is
        pending. The pop decides who reports, so each record is reported exactly once.
        """
        message = self._unacknowledged.get(number)
        if message is None:
            return None
        self._reporting[number] = (message, _get_ident())
        if self._unacknowledged.pop(number, None) is None:
            self._reported(number)
            return None
        return message

    def _reported(self, number: int) -> None:
        self._reporting.pop(number, None)
        # Also while other reports are being made: a waiter may be one of their reporters,
        # which waits for all but its own.
        if not self._unacknowledged:
            with self._lock:
                self._all_acknowledged.notify_all()

    def _settle(self, number: int) -> Message | None:
        """Take record ``number`` out of the unacknowledged, for a caller that reports it
        without ``flush()`` waiting for that report (nobody observes reports)."""
        message = self._unacknowledged.pop(number, None)
        if not self._unacknowledged and not self._reporting:
            with self._lock:
                self._all_acknowledged.notify_all()
        return message

    def _report_failure(self, message: Message, exc: BaseException) -> None:
        self._report_failed(message, f"Kafka did not store it: {type(exc).__name__}: {exc}")

    def _report_failed(self, message: Message, reason: str) -> None:
        self._make_report(
            DeliveryReport(message, DeliveryStatus.FAILED, self._name, reason, attempts=1)
        )

    def _make_report(self, report: DeliveryReport) -> None:
        """Hand ``report`` to the reporter, this thread counted as making one meanwhile."""
        _in_report.depth = getattr(_in_report, "depth", 0) + 1
        try:
            self._report(report)
        finally:
            _in_report.depth -= 1

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        """Send what lingers now; wait up to ``timeout`` (default ``flush_timeout``) for acks.

        Returns the messages still held by then: not yet acknowledged or refused by the broker,
        or whose report is still being made; a message is off this list only once its report
        (ACCEPTED, or FAILED when the producer gave up on it) has been made. ``flush(0)`` only
        looks. Called from a report, it neither waits for nor returns the messages that report
        is about, and waits for acknowledgements only, not for other threads' reports; on a
        Kafka producer's network thread it does not wait at all (see the module docstring).
        Once ``close()`` has started it still waits (for what that close has not settled yet)
        and returns what is held. ``timeout`` is a number of seconds from 0 to
        ``MAX_SECONDS``, else ``ValueError``.
        """
        bound = bounded(timeout, self._flush_timeout)
        if not self._owns_records():
            return ()
        if bound > 0 and not _on_network_thread():
            if self._closed:  # close() is hurrying the producer, or has closed it
                self._wait_for_acknowledgements(time.monotonic() + bound)
            else:
                with self._hurried():
                    self._wait_for_acknowledgements(time.monotonic() + bound)
        return self._still_unacknowledged()

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
        with self._lock:  # one close only, also when a report and a user thread race to it
            if self._closed:
                return ()
            self._closed = True
        self._cancel_exit_close()
        if not self._owns_records():
            return ()
        if _on_network_thread():
            # From a report on a producer's network thread, which never waits: on its own
            # producer nothing is acknowledged until the report returns (and its close would
            # wait for this very thread); another's network thread may be waiting for this one.
            left = self._give_up_on_unacknowledged(
                "before close() was called from a delivery report on a Kafka producer's "
                "network thread"
            )
            self._close_producer(timeout=0)
            return left
        deadline = time.monotonic() + bound
        with self._hurried():
            self._wait_for_acknowledgements(deadline)
        left = self._give_up_on_unacknowledged(within)
        self._close_producer(timeout=0 if left else max(deadline - time.monotonic(), 0.0))
        return left

    def _close_at_exit(self) -> None:
        self._close(self._exit_timeout, f"within the {self._exit_timeout:g}s exit_timeout at exit")

    @contextlib.contextmanager
    def _hurried(self) -> Iterator[None]:
        # Linger no more while inside: what is batched (and what is sent meanwhile) leaves now
        # rather than after linger_ms, which may be longer than the bound. This is the start of
        # KafkaProducer.flush(), which then waits batch by batch, each for the whole timeout;
        # its end (the count of flushes in progress going down) is ours, so lingering resumes.
        accumulator = getattr(self._producer, "_accumulator", None)
        sender = getattr(self._producer, "_sender", None)
        flushes = getattr(accumulator, "_flushes_in_progress", None)
        if accumulator is None or sender is None or flushes is None:
            yield
            return
        accumulator.begin_flush()
        sender.wakeup()
        try:
            yield
        finally:
            flushes.decrement()

    def _give_up_on_unacknowledged(self, when: str) -> list[Message]:
        # All taken before any is reported, so no report of a late acknowledgement begins once
        # close() gave up (taken one by one between slow FAILED reports, some were acknowledged
        # meanwhile and their reports still being made when close() returned). A late
        # acknowledgement or error that pops one first reports it itself.
        # Each is in _giving_up before it leaves _unacknowledged, and until its FAILED report
        # is made: a flush() on another thread waits for those reports or returns them.
        giving_up = self._unacknowledged.copy()
        self._giving_up = (_get_ident(), giving_up)
        left: list[tuple[int, Message]] = []
        for number in list(giving_up):
            if self._unacknowledged.pop(number, None) is None:
                del giving_up[number]  # in _reporting: its acknowledgement's report is made
            else:
                left.append((number, giving_up[number]))
        with self._lock:  # a reporter's flush() waits for acknowledgements only: none is left
            self._all_acknowledged.notify_all()
        reason = f"not acknowledged by Kafka {when}; it may be resent"
        try:
            for number, message in left:
                self._giving_up_now = number
                try:
                    self._report_failed(message, reason)
                except Exception:
                    # A reporter passed in as report= (the pipeline's catches its plugins'
                    # errors): the others still get theirs, and the producer is still closed.
                    logger.exception(
                        "transport %r: the delivery reporter failed on a message close() "
                        "gave up on",
                        self._name,
                    )
                finally:
                    del giving_up[number]
                    with self._lock:
                        self._all_acknowledged.notify_all()
        finally:
            # Interrupted (KeyboardInterrupt in a report): no flush() waits for the rest.
            self._giving_up_now = -1
            giving_up.clear()
            with self._lock:
                self._all_acknowledged.notify_all()
        if left:
            logger.warning(
                "transport %r: %d message(s) not acknowledged by Kafka %s, reported FAILED",
                self._name,
                len(left),
                when,
            )
        return [message for _, message in left]

    def _close_producer(self, timeout: float) -> None:
        kafka = kafka_python()
        try:
            self._producer.close(timeout=timeout)
        except kafka.errors.KafkaTimeoutError:
            # KafkaProducer.close() flushes first and raises before stopping its sender thread
            # when records are still outstanding; stop that thread ourselves so close() stays
            # bounded and nothing keeps running after it.
            sender = getattr(self._producer, "_sender", None)
            if sender is not None:
                sender.force_close()
            # Its own close() would otherwise run again from __del__ and raise the same timeout.
            self._producer._closed = True

    def _wait_for_acknowledgements(self, deadline: float) -> None:
        # Not KafkaProducer.flush(timeout): it applies the timeout to each batch in turn, so
        # its total is unbounded. Records still leave after at most linger_ms on their own.
        def acknowledged() -> bool:
            return not self._unacknowledged

        def reported() -> bool:
            return not (self._unacknowledged or self._reporting or self._giving_up[1])

        # Inside a report (never a network thread's: those do not wait), reports other
        # threads make are not waited for (they may be waiting for this one's), only
        # acknowledgements, which the network threads, never waiting, keep making.
        inside_report = getattr(_in_report, "depth", 0) > 0
        self._wait(acknowledged if inside_report else reported, deadline)

    def _wait(self, done: Callable[[], bool], deadline: float) -> None:
        with self._all_acknowledged:
            self._all_acknowledged.wait_for(done, max(deadline - time.monotonic(), 0.0))

    def _still_unacknowledged(self) -> list[Message]:
        # Copied in this order: a record being claimed (or given up on by close()) enters
        # _reporting (_giving_up) before it leaves _unacknowledged, so it is in one copy or
        # another until its report is made.
        held = self._unacknowledged.copy()
        reporting = self._reporting.copy()
        closer, giving_up = self._giving_up
        if not reporting and not giving_up:
            return list(held.values())  # nothing being reported: no sort, no second look
        me = _get_ident()  # not the messages this thread is reporting (from its report)
        held.update((n, message) for n, (message, owner) in reporting.items() if owner != me)
        if closer != me:
            held.update(giving_up.copy())
        else:  # from a FAILED report close() is making: all but the one being reported
            now = self._giving_up_now
            held.update((n, message) for n, message in giving_up.items() if n != now)
        return [held[number] for number in sorted(held)]


def _close_at_exit(ref: weakref.ref[KafkaTransport]) -> None:
    transport = ref()
    if transport is not None:
        transport._close_at_exit()


def _release_producer(producer: Any, cancel_exit_close: Callable[[], None]) -> None:
    """For a transport freed without ``close()``: stop its producer, forget its exit close.

    Nothing is left to wait for (see ``KafkaTransport.__init__``), and this may run on the
    sender thread, so the thread is told to end, not waited for.
    """
    cancel_exit_close()
    if getattr(producer, "_closed", True):
        return
    producer._closed = True  # so its __del__ does not close it again
    sender = getattr(producer, "_sender", None)
    if sender is not None and sender.is_alive():  # not the parent's, in a fork() child
        sender.initiate_close()  # it still sends anything left, then closes its connections


def _unrecoverable(producer: Any) -> str | None:
    """Why ``producer`` will never deliver again, if kafka-python says so: its transaction
    manager (idempotence) is in the fatal error state, which only a new producer leaves."""
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None or not manager.has_fatal_error():
        return None
    return f"is in a fatal error state ({manager.last_error!r})"


def _lost_producer_id(producer: Any) -> bool:
    """Whether an idempotent ``producer`` has no producer id while not asking for one.

    kafka-python 3.0 resets the id after a batch it had sent expires (a broker that stopped
    answering) but asks for a new one only from its initial state, so it then sends nothing,
    and expires nothing, ever again. A producer still getting its first id is not in this state.
    """
    manager = getattr(producer, "_transaction_manager", None)
    if manager is None or manager.is_transactional() or manager.has_producer_id():
        return False
    state = getattr(manager, "_current_state", None)
    return getattr(state, "name", None) == "READY"


class _Watchdog:
    """One daemon thread that looks at every kafka transport's producer each ``WATCH_INTERVAL``
    (or at once when woken) and has a broken one replaced (``KafkaTransport._watch``). It holds
    the transports weakly, and ends once none is left open; after ``fork()`` the child starts
    its own thread at its first send."""

    def __init__(self) -> None:
        self._transports: weakref.WeakSet[KafkaTransport] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = -1

    def watch(self, transport: KafkaTransport) -> None:
        with self._lock:
            self._transports.add(transport)
            if self._thread is None or self._pid != _getpid() or not self._thread.is_alive():
                self._woken = threading.Event()
                self._pid = _getpid()
                self._thread = threading.Thread(
                    target=self._run, name="mixpanel-core-kafka-watchdog", daemon=True
                )
                self._thread.start()

    def wake(self) -> None:
        self._woken.set()

    def _run(self) -> None:
        while True:
            self._woken.wait(WATCH_INTERVAL)
            self._woken.clear()
            self._look_at_all(time.monotonic())
            with self._lock:
                # Every transport closed or freed: the thread ends (``watch`` starts another),
                # rather than waking every second for the life of the process.
                if not self._transports and self._thread is threading.current_thread():
                    self._thread = None
                    return

    def _look_at_all(self, now: float) -> None:
        # In a function of its own, so no transport stays referenced by this thread (and alive)
        # while it waits for the next look.
        for transport in list(self._transports):
            if transport._closed:
                self._transports.discard(transport)
                continue
            try:
                transport._watch(now)
            except Exception:
                logger.exception("transport %r: the producer watchdog failed", transport._name)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # a parent's thread may have held it at the fork
        self._thread = None


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG._after_fork_in_child)


class _Settlement:
    """Both callbacks of one record's future: the acknowledgement or the failure settles it.

    One small object per record, where a bound method and a ``functools.partial`` for each
    callback were four: objects the garbage collector tracks, alive until the broker answers,
    which made it collect twice as often as a bare producer's sends do.
    """

    __slots__ = ("_number", "_sender", "_transport", "attached")

    def __init__(self, transport: KafkaTransport, number: int) -> None:
        self._transport = transport
        self._number = number
        self._sender = _get_ident()
        self.attached = False
        """Set by ``send()`` once it attached both callbacks."""

    def __call__(self, outcome: object) -> None:
        if not self.attached and _get_ident() == self._sender:
            # kafka-python runs a finished future's callbacks at once, on the thread attaching
            # them: the broker answered before send() had asked to be told (its caller
            # descheduled in between). Not reported there, inside send(): a reporter waiting
            # for something that caller holds (a lock around track()) would wait for ever.
            # Not a daemon: the interpreter waits for it before the exit closes run, so the
            # report is made, not lost with the process.
            threading.Thread(
                target=self._settle_logged, args=(outcome,), name="mixpanel-core-kafka-report"
            ).start()
        else:
            self._settle(outcome)

    def _settle_logged(self, outcome: object) -> None:
        try:
            self._settle(outcome)
        except Exception:  # on the network thread, kafka-python logs what a callback raises
            logger.exception("transport %r: a delivery report failed", self._transport._name)

    def _settle(self, outcome: object) -> None:
        if isinstance(outcome, BaseException):
            self._transport._failed(self._number, outcome)
        else:
            self._transport._acknowledged(self._number, outcome)


def _headers_for(endpoint: str) -> headers.Headers:
    return [
        (headers.ENDPOINT, endpoint.encode()),
        (headers.SCHEMA, headers.SCHEMA_VERSION.encode()),
        (headers.LIBRARY, __version__.encode()),
    ]


def _build_producer(
    bootstrap_servers: str | Sequence[str], options: Mapping[str, Any], name: str
) -> Any:
    kafka = kafka_python()
    path = f"transports.{name}.producer"
    for key, reason in TRANSPORT_OWNED_OPTIONS.items():
        if key in options:
            raise ConfigError(f"{path}.{key}: not allowed here: {reason}")
    settings = {
        **DURABLE_PRODUCER_DEFAULTS,
        **client_options(options, kafka.KafkaProducer.DEFAULT_CONFIG, path),
    }
    settings["bootstrap_servers"] = (
        bootstrap_servers if isinstance(bootstrap_servers, str) else list(bootstrap_servers)
    )
    if "bootstrap_timeout_ms" not in options and "api_version" not in options:
        # kafka-python finds the broker's version when the producer is built, waiting up to
        # bootstrap_timeout_ms (30 s) whatever max_block_ms says: bounded by it too, so a
        # transport built (on the first send) with no broker up fails within max_block_ms.
        defaults = kafka.KafkaProducer.DEFAULT_CONFIG
        settings["bootstrap_timeout_ms"] = min(
            settings.get("max_block_ms", defaults["max_block_ms"]),
            defaults["bootstrap_timeout_ms"],
        )
    producer = build_client(kafka.KafkaProducer, settings, path, options, f"transport {name!r}")
    # Its own exit hook flushes for 1 s, raises KafkaTimeoutError when the broker is gone and
    # reports nothing: the transport's bounded close at exit (process_exit) replaces it.
    producer._unregister_cleanup()
    if settings["acks"] == 0:
        # The producer then completes a send once the record is written to the socket, so
        # ACCEPTED no longer means the broker stored it: say so once, where it was chosen.
        logger.warning(
            "transport %r: %s.acks = 0: messages are reported ACCEPTED without any "
            "acknowledgement from the broker and may be lost",
            name,
            path,
        )
    return producer
