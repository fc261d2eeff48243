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
``dead-letter-attempts``           requests made for the record (delivery stage only)
``dead-letter-time``               when it was dead-lettered, ISO 8601 UTC
``dead-letter-group``              the forwarder's consumer group
=================================  ========================================================
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from mixpanel_core.forwarder.config import ForwarderError

PREFIX = "dead-letter-"
DELIVERY_STAGE = "delivery"


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
    ) -> Any:
        """Produce ``raw`` (a ``ConsumerRecord``) with the why-headers; returns its future."""
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
        record_headers = list(raw.headers or ()) + [
            (PREFIX + name, str(value).encode()) for name, value in why.items() if value is not None
        ]
        return self._producer.send(self.topic, key=raw.key, value=raw.value, headers=record_headers)

    def settle(self, futures: Sequence[Any], timeout: float) -> None:
        """Wait up to ``timeout`` for ``futures``; raise ``ForwarderError`` if any did not land.

        Stopping is the only safe answer: the record is neither delivered nor kept anywhere, so
        its offset must not be committed, and nothing after it on its partition either.
        """
        if not futures:
            return
        for future in futures:
            try:
                future.get(timeout=timeout)
            except Exception as exc:  # kafka-python's KafkaError, or its timeout
                raise ForwarderError(
                    f"the dead-letter topic {self.topic!r} did not take a record: "
                    f"{type(exc).__name__}: {exc}. Check that the topic exists and that the "
                    "source transport's producer options allow writing to it; nothing from "
                    "that record on was committed."
                ) from exc

    def close(self, timeout: float) -> None:
        self._producer.close(timeout=timeout)
