"""Writing records that cannot be delivered to the dead-letter topic, with headers saying why.

The dead-letter record keeps the original key, value and headers, and adds:

=================================  ========================================================
header                             value
=================================  ========================================================
``dead-letter-source-topic``       topic the record was read from
``dead-letter-source-partition``   its partition
``dead-letter-source-offset``      its offset
``dead-letter-stage``              ``decode`` (poison) or ``delivery`` (Mixpanel rejected it)
``dead-letter-reason``             what was wrong, in words (Mixpanel's message if it sent one)
``dead-letter-http-status``        Mixpanel's HTTP status (delivery stage only)
``dead-letter-field``              the field Mixpanel or the decoder named, when one was named
``dead-letter-attempts``           requests made for the record, over every delivery round
                                   (delivery stage only)
``dead-letter-time``               when it was dead-lettered, ISO 8601 UTC
``dead-letter-group``              the forwarder's consumer group
``dead-letter-truncated``          only when the value was cut to fit the producer's
                                   ``max_request_size``: the original value's size in bytes
``dead-letter-null-value``         only when the record had neither key nor value: ``true``
                                   (its dead letter's value is empty, not null)
``dead-letter-headers-dropped``    only when the record's own headers alone did not fit the
                                   producer's ``max_request_size``: how many of them (the
                                   largest) the dead letter leaves out
=================================  ========================================================

A record with neither key nor value (Kafka allows it; other clients write it) is poison, but
kafka-python refuses to produce one: its dead letter gets an empty value instead, and the
``dead-letter-null-value`` header tells it from a record whose value was empty.

A record the source producer accepted can still be too big to dead-letter, since the headers
add a few hundred bytes. Its dead letter then carries the value's first bytes, as many as fit:
the headers still say which record it was and why, so the operator can fetch it from the
source topic while it is retained. When the record's own headers leave no room even for the
dead-letter headers, the largest of them are left out too, as few as will do.

Waiting for the dead-letter topic's broker (for the topic's metadata before a send, and for
the acknowledgement after it) can be bounded by a ``time_left`` function, read again every
``WAIT_SLICE`` seconds: the forwarder's shutdown deadline, which SIGTERM may set while a wait
is under way, then ends the wait even when that broker is unreachable.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from mixpanel_core.forwarder.config import ForwarderError
from mixpanel_core.kafka.client_library import kafka_python

logger = logging.getLogger("mixpanel_core.forwarder")

PREFIX = "dead-letter-"
DELIVERY_STAGE = "delivery"
TRUNCATED_HEADER = PREFIX + "truncated"
NULL_VALUE_HEADER = PREFIX + "null-value"
HEADERS_DROPPED_HEADER = PREFIX + "headers-dropped"

DEFAULT_MAX_REQUEST_SIZE = 1_048_576
"""kafka-python's default, for a producer that does not expose its ``config``."""
FRAMING_ALLOWANCE = 1024
"""Bytes kept free for Kafka's record-batch header, the record's own framing and the varint
length of every field (about 100 bytes in kafka-python's estimate), with room to spare."""
HEADER_FRAMING = 10
"""Two varint lengths (at most 5 bytes each) per header."""
WAIT_SLICE = 0.1
"""Longest a wait for the broker goes without reading its ``time_left`` again."""

TimeLeft = Callable[[], float]
"""Seconds a wait may still last, read again while it lasts (0 or less: stop waiting)."""


class DeadLetterTimeoutError(ForwarderError):
    """The dead-letter topic's broker did not answer within the time the write was given."""


class DeadLetterWriter:
    """Produces dead letters to ``topic``; ``settle`` says which the broker acknowledged."""

    def __init__(self, producer: Any, topic: str, group_id: str) -> None:
        self._producer = producer
        self.topic = topic
        self._group_id = group_id

    def send(
        self,
        raw: Any,
        stage: str,
        reason: str,
        *,
        http_status: int | None = None,
        field: str | None = None,
        attempts: int | None = None,
        time_left: TimeLeft | None = None,
    ) -> Any:
        """Produce ``raw`` (a ``ConsumerRecord``) with the why-headers; returns its future.

        The producer's wait for the topic's metadata is bounded by its ``max_block_ms`` and, if
        given, by ``time_left``: ``DeadLetterTimeoutError`` when the broker did not answer.
        """
        why = {
            "source-topic": raw.topic,
            "source-partition": raw.partition,
            "source-offset": raw.offset,
            "stage": stage,
            "reason": reason,
            "http-status": http_status,
            "field": field,
            "attempts": attempts,
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
            "group": self._group_id,
        }
        # Kafka allows a header with a null value (other clients write them), but kafka-python's
        # producer refuses one with a TypeError: such a record could never be dead-lettered, and
        # every restart would stop on it. Its header is kept, with an empty value.
        record_headers = [(name, b"" if data is None else data) for name, data in raw.headers or ()]
        # A reason may quote a property name holding a lone surrogate (os.fsdecode gives them;
        # ``wire.dumps`` sends one as its escape): UTF-8 cannot carry it, so it is written as
        # that escape here too, or the write would raise and the forwarder stop on the record.
        record_headers += [
            (PREFIX + name, str(value).encode(errors="backslashreplace"))
            for name, value in why.items()
            if value is not None
        ]
        value = raw.value
        if raw.key is None and value is None:
            # kafka-python refuses to produce a record with neither (ValueError): the forwarder
            # would stop on it at every start, and its partition would never move again.
            value = b""
            record_headers.append((NULL_VALUE_HEADER, b"true"))
        where = f"{raw.topic}[{raw.partition}]@{raw.offset}"
        self._wait_for_topic(where, time_left)
        too_large = kafka_python().errors.MessageSizeTooLargeError
        try:
            return self._produce(raw.key, value, record_headers, where)
        except too_large:
            # Raised by send() itself, before anything was queued: nothing to undo.
            pass
        return self._send_truncated(raw, record_headers, where)

    def _send_truncated(self, raw: Any, record_headers: list[tuple[str, bytes]], where: str) -> Any:
        """The dead letter with its value cut to fit ``max_request_size`` (and, if its own
        headers alone leave no room, the largest of them left out); returns its future.

        Without it the record could never be dead-lettered: every restart would stop on it, and
        its partition would never move again.
        """
        value: bytes = bytes(raw.value or b"")
        # The record's own headers come first (see send), whatever their names.
        own = len(raw.headers or ())
        budget = self._max_request_size() - FRAMING_ALLOWANCE - len(raw.key or b"")
        cut = (TRUNCATED_HEADER, str(len(value)).encode())
        kept, own_kept = _fitted([*record_headers, cut], own, budget)
        if kept is None:
            raise ForwarderError(
                f"the dead letter of {where} is too large for the dead-letter producer even "
                "without its value and its own headers (its key and the dead-letter headers "
                "alone exceed max_request_size); nothing from that record on was committed. "
                "Raise the source transport's producer max_request_size, or skip the record."
            )
        room = budget - _size(kept)
        if room >= len(value):
            # Only the record's own headers were in the way: the value goes whole, unmarked.
            kept = [header for header in kept if header is not cut]
            record_headers, room = kept, len(value)
        else:
            record_headers = kept
        logger.warning(
            "the dead letter of %s is too large for the producer: sending %d of its %d value "
            "bytes and %d of its %d own headers (its %s and %s headers say what was left out)",
            where,
            room,
            len(value),
            own_kept,
            own,
            TRUNCATED_HEADER,
            HEADERS_DROPPED_HEADER,
        )
        try:
            return self._produce(raw.key, value[:room], record_headers, where)
        except kafka_python().errors.MessageSizeTooLargeError:
            pass  # the framing allowance fell short; said below, outside this handler
        raise ForwarderError(
            f"the dead letter of {where} is too large for the dead-letter producer even cut to "
            f"{room} value bytes; nothing from that record on was committed. Raise the source "
            "transport's producer max_request_size, or skip the record."
        )

    def _produce(
        self, key: bytes | None, value: bytes | None, record_headers: list[Any], where: str
    ) -> Any:
        """``producer.send``, its synchronous failures but ``MessageSizeTooLargeError`` made
        ``ForwarderError``, so that the forwarder commits what it did and stops (exit 1).
        """
        errors = kafka_python().errors
        try:
            return self._producer.send(self.topic, key=key, value=value, headers=record_headers)
        except errors.MessageSizeTooLargeError:
            raise
        except (errors.KafkaError, ValueError, TypeError) as exc:
            # Only the exception's type: kafka-python's messages may echo producer options,
            # and those can hold SASL passwords.
            raise ForwarderError(
                f"the dead-letter topic {self.topic!r} did not take the dead letter of {where}: "
                f"the producer raised {type(exc).__name__}. Check that the topic exists and "
                "that the source transport's producer options allow writing to it; nothing "
                "from that record on was committed."
            ) from None

    def _wait_for_topic(self, where: str, time_left: TimeLeft | None) -> None:
        """Wait, in slices, until the producer knows the topic's partitions.

        ``send`` would wait for them itself, but in one block of ``max_block_ms`` (60 s by
        default) that nothing can cut short: a SIGTERM while the broker is unreachable would
        wait it out. So the wait happens here, a ``WAIT_SLICE`` at a time (kafka-python reads
        ``max_block_ms`` from ``config`` on each call), checking ``time_left`` in between;
        ``send`` then finds the metadata and does not block. Once the producer knows the
        topic this returns at once. A producer without kafka-python's ``config`` is left to
        its own ``send``.
        """
        producer = self._producer
        config = getattr(producer, "config", None)
        configured = config.get("max_block_ms") if isinstance(config, dict) else None
        if not isinstance(config, dict) or not isinstance(configured, int | float):
            return
        errors = kafka_python().errors
        end = time.monotonic() + configured / 1000
        tried = False
        try:
            while True:
                left = end - time.monotonic()
                if time_left is not None:
                    left = min(left, time_left())
                # One try whatever the time left: with the metadata known it does not block,
                # and a producer configured not to block at all (max_block_ms = 0) must work.
                if left <= 0 and tried:
                    raise DeadLetterTimeoutError(
                        f"the dead-letter topic {self.topic!r} did not take the dead letter of "
                        f"{where}: its broker did not answer in time (max_block_ms, or the "
                        "shutdown deadline). Check that the brokers are reachable and the topic "
                        "exists; nothing from that record on was committed."
                    )
                config["max_block_ms"] = max(1, int(min(left, WAIT_SLICE) * 1000))
                tried = True
                try:
                    producer.partitions_for(self.topic)
                except errors.KafkaTimeoutError:
                    continue
                except errors.KafkaError as exc:
                    raise ForwarderError(
                        f"the dead-letter topic {self.topic!r} did not take the dead letter of "
                        f"{where}: the producer raised {type(exc).__name__}. Check that the "
                        "topic exists and that the source transport's producer options allow "
                        "writing to it; nothing from that record on was committed."
                    ) from None
                return
        finally:
            config["max_block_ms"] = configured

    def _max_request_size(self) -> int:
        """The producer's ``max_request_size`` (kafka-python keeps its options in ``config``)."""
        config = getattr(self._producer, "config", None)
        size = config.get("max_request_size") if isinstance(config, dict) else None
        return size if isinstance(size, int) else DEFAULT_MAX_REQUEST_SIZE

    def settle(self, futures: Sequence[Any], timeout: float) -> None:
        """Wait up to ``timeout`` for ``futures``; raise ``ForwarderError`` if any did not land.

        Stopping is the only safe answer: the record is neither delivered nor kept anywhere, so
        its offset must not be committed, and nothing after it on its partition either.
        """
        end = time.monotonic() + timeout

        def time_left() -> float:
            return end - time.monotonic()

        for future in futures:
            if not self.acknowledged(future, time_left):
                raise DeadLetterTimeoutError(
                    f"the dead-letter topic {self.topic!r} did not acknowledge a record within "
                    f"{timeout:g}s. Check that the brokers are reachable and that the topic "
                    "exists; nothing from that record on was committed."
                )

    def acknowledged(self, future: Any, time_left: TimeLeft) -> bool:
        """Whether the broker acknowledged ``future``'s dead letter before time ran out.

        ``time_left`` is read again every ``WAIT_SLICE`` seconds, so a deadline brought
        forward meanwhile ends the wait; once it is 0 or less the future is checked without
        waiting. ``False``: not acknowledged yet, so its record must not be committed. Raises
        ``ForwarderError`` when the producer failed it (the record will not land).
        """
        while True:
            left = time_left()
            try:
                future.get(timeout=max(0.0, min(left, WAIT_SLICE)))
            except Exception as exc:  # kafka-python's KafkaError, or its timeout
                # kafka-python raises the same KafkaTimeoutError for "not done yet" as for a
                # record that expired: only ``is_done`` tells them apart.
                if getattr(future, "is_done", True):
                    raise ForwarderError(
                        f"the dead-letter topic {self.topic!r} did not take a record: "
                        f"{type(exc).__name__}: {exc}. Check that the topic exists and that "
                        "the source transport's producer options allow writing to it; nothing "
                        "from that record on was committed."
                    ) from exc
                if left <= 0:
                    return False
                continue
            return True

    def close(self, timeout: float) -> None:
        self._producer.close(timeout=timeout)


Header = tuple[str, bytes]


def _size(headers: Sequence[Header]) -> int:
    """Bytes ``headers`` take in a record, framing included."""
    return sum(len(name.encode()) + len(data) + HEADER_FRAMING for name, data in headers)


def _fitted(headers: list[Header], own: int, budget: int) -> tuple[list[Header] | None, int]:
    """``headers`` (the record's ``own`` first, whatever their names) within ``budget`` bytes:
    as they are if they fit, else without the largest of the record's own, as few as will
    do, and with a header saying how many went; and how many of its own are kept. ``None``
    when the dead-letter headers alone do not fit.

    A record whose own headers alone exceed the producer's limit could otherwise never be
    dead-lettered, and the forwarder would stop on it at every start (review R64 F2).
    """
    if _size(headers) <= budget:
        return headers, own
    largest = sorted(range(own), key=lambda index: _size([headers[index]]), reverse=True)
    dropped: set[int] = set()
    for index in largest:
        dropped.add(index)
        kept = [header for i, header in enumerate(headers) if i not in dropped]
        marked = [*kept, (HEADERS_DROPPED_HEADER, str(len(dropped)).encode())]
        if _size(marked) <= budget:
            return marked, own - len(dropped)
    return None, 0
