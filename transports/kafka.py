"""``kafka``: produces each message to a Kafka topic; the forwarder delivers it to Mixpanel.

The record key is ``message.key`` (the distinct id, or ``group_key:group_id``) so one identity's
messages stay in order on one partition; the value is the wire record as compact JSON; headers
carry the endpoint, the schema version and the library version (``mixpanel_core.kafka.headers``).
A message is reported ACCEPTED only once the broker acknowledged it, FAILED when the producer
gives up on it. Per-call legacy ``/import`` credentials (``import_data(api_key=...)``) do not
travel through Kafka: the forwarder authenticates with its own ``[mixpanel]`` settings.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.errors import ConfigError, TransportError
from mixpanel_core.frozen import EMPTY
from mixpanel_core.kafka import headers
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.options import KafkaOptions, client_options
from mixpanel_core.messages import ENDPOINTS, Message
from mixpanel_core.schema import read
from mixpanel_core.transport import TransportContext, ignore_report
from mixpanel_core.version import __version__
from mixpanel_core.wire import dumps

DURABLE_PRODUCER_DEFAULTS: Mapping[str, Any] = {"acks": "all", "enable_idempotence": True}
"""Stored by every in-sync replica, written once per send; ``producer = {...}`` may override."""


class KafkaTransport:
    """Produces messages to ``topic``; see the module docstring for keys, values and headers."""

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        topic: str,
        producer_options: Mapping[str, Any] = EMPTY,
        *,
        flush_timeout: float = 30.0,
        close_timeout: float = 30.0,
        name: str = "kafka",
        report: Reporter = ignore_report,
    ) -> None:
        self._topic = topic
        self._name = name
        self._report = report
        self._flush_timeout = flush_timeout
        self._close_timeout = close_timeout
        self._producer = _build_producer(bootstrap_servers, producer_options, name)
        self._headers = {endpoint: _headers_for(endpoint) for endpoint in ENDPOINTS}
        # Sent but not yet acknowledged, by send number; callbacks run on the producer's thread.
        self._unacknowledged: dict[int, Message] = {}
        self._next_number = itertools.count().__next__
        self._lock = threading.Lock()
        self._all_acknowledged = threading.Condition(self._lock)
        self._closed = False

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> KafkaTransport:
        opts = read(KafkaOptions, options, context.path)
        return cls(
            opts.bootstrap_servers,
            opts.topic,
            opts.producer,
            flush_timeout=opts.flush_timeout,
            close_timeout=opts.close_timeout,
            name=context.name,
            report=context.report,
        )

    @property
    def topic(self) -> str:
        return self._topic

    def send(self, message: Message) -> None:
        """Hand ``message`` to the producer; the report follows the broker's acknowledgement."""
        if self._closed:
            raise TransportError(f"transport {self._name!r} is closed")
        number = self._next_number()
        # A dict item assignment is atomic; the lock is only for the flush condition.
        self._unacknowledged[number] = message
        key = message.key
        try:
            future = self._producer.send(
                self._topic,
                value=dumps(message.record),
                key=key.encode() if key else None,
                headers=self._headers[message.endpoint],
            )
        except Exception as exc:  # buffer full past max_block_ms, record too large, ...
            self._settle(number)
            self._report_failure(message, exc)
            raise TransportError(
                f"transport {self._name!r} could not produce to {self._topic!r}: {exc}"
            ) from exc
        future.add_callback(self._acknowledged, number)
        future.add_errback(self._failed, number)

    def _acknowledged(self, number: int, _metadata: object) -> None:
        message = self._settle(number)
        if message is not None and self._report is not ignore_report:
            self._report(DeliveryReport(message, DeliveryStatus.ACCEPTED, self._name, attempts=1))

    def _failed(self, number: int, exc: BaseException) -> None:
        message = self._settle(number)
        if message is not None:
            self._report_failure(message, exc)

    def _settle(self, number: int) -> Message | None:
        message = self._unacknowledged.pop(number, None)
        if not self._unacknowledged:
            with self._lock:
                self._all_acknowledged.notify_all()
        return message

    def _report_failure(self, message: Message, exc: BaseException) -> None:
        self._report_failed(message, f"Kafka did not store it: {type(exc).__name__}: {exc}")

    def _report_failed(self, message: Message, reason: str) -> None:
        self._report(DeliveryReport(message, DeliveryStatus.FAILED, self._name, reason, attempts=1))

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        """Wait up to ``timeout`` (default ``flush_timeout``) for acknowledgements.

        Returns the messages the broker has not acknowledged by then.
        """
        if self._closed:
            return ()
        self._wait_for_acknowledgements(self._flush_timeout if timeout is None else timeout)
        return self._still_unacknowledged()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        """Flush within ``timeout`` (default ``close_timeout``), then close the producer.

        What the broker has not acknowledged by then is reported FAILED (here, before the
        producer is stopped, so exactly once and always with the same reason) and returned.
        """
        if self._closed:
            return ()
        bound = self._close_timeout if timeout is None else timeout
        self._wait_for_acknowledgements(bound)
        left = self._give_up_on_unacknowledged(bound)
        self._closed = True
        self._close_producer(timeout=0 if left else bound)
        return left

    def _give_up_on_unacknowledged(self, waited: float) -> list[Message]:
        left = []
        reason = f"not acknowledged by Kafka within close()'s {waited:g}s; it may be resent"
        for number in list(self._unacknowledged):
            # A late acknowledgement or error pops it first and reports it itself.
            message = self._settle(number)
            if message is not None:
                left.append(message)
                self._report_failed(message, reason)
        return left

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

    def _wait_for_acknowledgements(self, timeout: float) -> None:
        # Not KafkaProducer.flush(timeout): it applies the timeout to each batch in turn, so
        # its total is unbounded. Records still leave after at most linger_ms on their own.
        with self._all_acknowledged:
            self._all_acknowledged.wait_for(lambda: not self._unacknowledged, timeout)

    def _still_unacknowledged(self) -> list[Message]:
        return list(self._unacknowledged.copy().values())


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
    settings = {
        **DURABLE_PRODUCER_DEFAULTS,
        **client_options(options, kafka.KafkaProducer.DEFAULT_CONFIG, path),
    }
    settings["bootstrap_servers"] = (
        bootstrap_servers if isinstance(bootstrap_servers, str) else list(bootstrap_servers)
    )
    try:
        return kafka.KafkaProducer(**settings)
    except (ValueError, TypeError, AssertionError):
        # kafka-python's message may echo the values, passwords included: name the keys only.
        raise ConfigError(
            f"{path}: kafka-python refused the options "
            f"({', '.join(sorted(options)) or 'none given'}); check names and values against "
            "KafkaProducer's documentation"
        ) from None
    except kafka.errors.KafkaError as exc:
        raise TransportError(
            f"transport {name!r} cannot reach Kafka at {bootstrap_servers}: {exc}"
        ) from exc
