"""``memory``: keeps every message it is sent, for tests (yours and ours)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.messages import Message
from mixpanel_core.schema import read
from mixpanel_core.transport import TransportContext, bounded, ignore_report


@attrs.frozen
class MemoryOptions:
    """A ``type = "memory"`` transport takes no options."""


class MemoryTransport:
    """Collects messages in order; ``records(endpoint)`` gives their wire records.

    Also importable as ``mixpanel_core.testing.MemoryTransport``. ``discard=True`` keeps
    nothing and reports nothing (for benchmarks of everything but the transport).
    """

    def __init__(
        self, name: str = "memory", report: Reporter = ignore_report, discard: bool = False
    ) -> None:
        self.messages: list[Message] = []
        self._name = name
        self._report = report
        self._lock = threading.Lock()
        self.closed = False
        if discard:
            self.send = self._discard  # type: ignore[method-assign]

    @classmethod
    def from_config(cls, options: Mapping[str, Any], context: TransportContext) -> MemoryTransport:
        read(MemoryOptions, options, context.path)
        return cls(context.name, context.report)

    def send(self, message: Message) -> None:
        with self._lock:
            self.messages.append(message)
        self._report(DeliveryReport(message, DeliveryStatus.ACCEPTED, self._name))

    def _discard(self, message: Message) -> None:
        """Takes the message and keeps nothing."""

    def records(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """The wire records received, optionally only those for ``endpoint``."""
        from mixpanel_core.frozen import thaw

        with self._lock:
            return [
                thaw(m.record) for m in self.messages if endpoint is None or m.endpoint == endpoint
            ]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def flush(self, timeout: float | None = None) -> Sequence[Message]:
        bounded(timeout, 0.0)  # the contract's rule, as for the transports that wait
        return ()

    def close(self, timeout: float | None = None) -> Sequence[Message]:
        bounded(timeout, 0.0)
        self.closed = True
        return ()
