"""Replacing a kafka transport's producer that can no longer deliver (see ``health``).

Found when a record fails and by the watchdog once a second; replaced on the next ``send()``
(never on a network thread) or by the watchdog, on a thread of the transport's. What the old
producer held is reported FAILED, each message once (see ``ProducerReplacement.replace``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mixpanel_core.errors import ConfigError, TransportError
from mixpanel_core.messages import Message

from .acknowledgements import Acknowledgements
from .log import logger
from .network_thread import on_network_thread
from .producer import close_producer
from .reports import Reports

if TYPE_CHECKING:
    from .transport import KafkaTransport

_getpid = os.getpid

FAILED_BUILD_POLL_INTERVAL = 0.05
"""Seconds between two looks, by a send waiting for another thread's build, at whether it
failed (see ``ProducerReplacement._lock_unless_failed_since``)."""


class ProducerReplacement:
    """Builds one transport's producers and replaces its broken one (``KafkaTransport._broken``
    says why it is broken), whoever finds it broken first."""

    def __init__(self, build: Callable[[], Any], acks: Acknowledgements, reports: Reports) -> None:
        self.build = build
        """A new producer with the transport's options."""
        self._acks = acks
        self._reports = reports
        self.build_failure: str | None = None
        """Why the last build of a replacement failed; sends fail at once until one succeeds."""
        self._build_failures = 0
        """Builds of a replacement that failed: a send that waited for another's build to fail
        does not build again (N threads would each wait ``max_block_ms`` in turn)."""
        # Reentrant: a reporter of what a replacement gives up on may send on the same thread.
        self._replacing = threading.RLock()
        self._rebuilding: threading.Thread | None = None
        """The thread replacing the producer for the watchdog, while it builds."""

    def after_fork(self) -> None:
        """In a ``fork()`` child with a producer of its own: nothing failed to build yet."""
        self.build_failure = None
        self._replacing = threading.RLock()  # the parent's watchdog may have held it

    def before_send(self, transport: KafkaTransport, message: Message) -> None:
        """Replace the broken producer before ``message`` goes to it, or refuse ``message``.

        Not on a network thread, which never waits (building may wait for a broker, up to
        ``max_block_ms``): the message goes to the broken producer, which fails it, and the
        watchdog replaces it. Once a build failed (no broker answered), sends are refused at
        once rather than each waiting for a broker; the watchdog tries again each second.
        """
        if on_network_thread():
            return
        # Counted before the failure is read: a build failing between the two reads is then
        # seen by one or the other, never by neither (which would build again).
        failed_since = self._build_failures
        failure = self.build_failure
        if failure is None:
            try:
                self.replace(transport, unless_failed_since=failed_since)
                return
            except (ConfigError, TransportError) as exc:
                failure = str(exc)
        if transport._broken is None:  # replaced meanwhile (by the watchdog)
            return
        reason = (
            f"not sent: its Kafka producer {transport._broken}, and no new one could be built "
            f"yet: {failure}"
        )
        self._reports.failed(message, reason)
        raise TransportError(f"transport {self._reports.name!r}: {reason}")

    def in_background(self, transport: KafkaTransport) -> None:
        """Replace the broken producer on a thread of this transport's, for the watchdog."""
        # Built on a thread of this transport's, not the watchdog's: a build waits up to
        # max_block_ms for a broker, and the watchdog looks after every kafka transport (one
        # whose cluster is down held another's recovery to one try per max_block_ms).
        rebuilding = self._rebuilding
        if rebuilding is None or not rebuilding.is_alive():
            self._rebuilding = threading.Thread(
                target=self._rebuild,
                args=(transport,),
                name=f"mixpanel-core-kafka-rebuild-{self._reports.name}",
                daemon=True,
            )
            self._rebuilding.start()

    def _rebuild(self, transport: KafkaTransport) -> None:
        failed_before = self.build_failure is not None
        try:
            self.replace(transport)
        except (ConfigError, TransportError) as exc:
            # Said once per outage; the tries that follow, once a second, at DEBUG.
            (logger.debug if failed_before else logger.warning)(
                "transport %r: could not replace its Kafka producer (%s); trying again",
                self._reports.name,
                exc,
            )
        except Exception:
            logger.exception(
                "transport %r: replacing its Kafka producer failed", self._reports.name
            )

    def replace(self, transport: KafkaTransport, unless_failed_since: int | None = None) -> None:
        """Put a new producer in place of the broken one, and settle what the old one held.

        Never on a producer's network thread (building may wait for a broker, up to
        ``max_block_ms``). The new producer is in place before the old one's records are
        taken: a send numbered after that point goes to the new one, so every record the old
        one was given is among those taken (or was settled already). Each taken record is
        reported FAILED once (``Acknowledgements.claim`` decides, so a late answer of the old
        producer reports nothing), then the old producer is stopped without waiting. If no new
        producer can be built, the old one is still settled and stopped, and the next send or
        look tries again.
        """
        self._lock_unless_failed_since(unless_failed_since)
        try:
            reason = transport._broken
            if reason is None or transport._closed or transport._pid != _getpid():
                return
            old = transport._producer
            try:
                new = self.build()
            except (ConfigError, TransportError) as exc:
                self.build_failure = str(exc)
                self._build_failures += 1
                self._retire(old, reason)
                raise
            transport._use_replacement(new)
            self.build_failure = None
            self._retire(old, reason)
            if transport._closed:  # a close() began meanwhile and may have closed the old one
                close_producer(transport._producer, timeout=0)
            logger.warning(
                "transport %r: replaced its Kafka producer, which %s", self._reports.name, reason
            )
        finally:
            self._replacing.release()

    def _lock_unless_failed_since(self, unless_failed_since: int | None) -> None:
        """Take the lock of replacements; with ``unless_failed_since``, raise instead once a
        build failed since that count was read.

        Another build failed while this send waited: no broker answered just now, so it fails
        at once rather than waiting again. Looked at while waiting, not only once the lock is
        taken: the watchdog's next try may take the lock first (a lock goes to whichever thread
        asks when it is released, not to the longest waiting), and the sends waiting then
        waited for that build too, twice ``max_block_ms``.
        """
        if unless_failed_since is None:
            self._replacing.acquire()
            return
        while True:
            locked = self._replacing.acquire(timeout=FAILED_BUILD_POLL_INTERVAL)
            if self._build_failures == unless_failed_since:
                if locked:
                    return
                continue
            if locked:
                self._replacing.release()
            raise TransportError(self.build_failure or "no new producer could be built")

    def _retire(self, old: Any, reason: str) -> None:
        """Report FAILED what ``old`` still holds (once), then stop it without waiting."""
        if getattr(old, "_closed", True):
            return  # retired already (a build failed after it was), or being retired
        old._closed = True  # its send() now raises, and neither close() nor __del__ waits
        acks = self._acks
        boundary = acks.next_number()
        taken = [number for number in acks.unacknowledged.copy() if number < boundary]
        why = (
            f"not acknowledged by Kafka before the transport replaced its producer, which {reason}"
        )
        # All claimed, and the old producer stopped, before any is reported: a reporter's
        # flush() waits for acknowledgements the old producer would never send (one report
        # after another, each waiting its whole timeout), and its network thread would keep
        # failing what it holds meanwhile.
        claimed = [(n, m) for n in taken if (m := acks.claim(n)) is not None]
        sender = getattr(old, "_sender", None)
        if sender is not None and sender.is_alive():
            sender.force_close()  # fails what it holds: those records are claimed already
        failed = len(claimed)
        for number, message in claimed:
            try:
                self._reports.given_up(message, why)
            except Exception:
                logger.exception(
                    "transport %r: the delivery reporter failed on a message its replaced "
                    "producer held",
                    self._reports.name,
                )
            finally:
                acks.reported(number)
        if failed:
            logger.warning(
                "transport %r: %d message(s) its broken Kafka producer held, reported FAILED",
                self._reports.name,
                failed,
            )
