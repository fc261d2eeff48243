"""Delivery reports: what became of each message once a transport dealt with it."""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs

from mixpanel_core.messages import Message


class DeliveryStatus(enum.Enum):
    """The outcome of one message."""

    ACCEPTED = "accepted"
    """Mixpanel (or the durable hop, e.g. a Kafka broker) took it."""
    REJECTED = "rejected"
    """Mixpanel refused it for good (strict-mode 400 entry, ``status: 0``); resending won't help."""
    FAILED = "failed"
    """Still not delivered after the retry budget, or refused credentials; it may be resent."""
    DROPPED = "dropped"
    """Never sent: invalid under the ``drop`` policy, or a full queue's drop policy."""


@attrs.frozen
class DeliveryReport:
    """One message's outcome, as seen by the delivery-observation hook.

    ``message`` is ``None`` only for input that could not even become a message (for example a
    property value JSON cannot carry, under the ``drop`` policy); ``reason`` then says why.
    """

    message: Message | None
    status: DeliveryStatus
    transport: str
    reason: str | None = None
    http_status: int | None = None
    attempts: int = 0
    field: str | None = None
    """For a rejection: the field Mixpanel named (``properties.time``), when it named one."""

    @property
    def ok(self) -> bool:
        return self.status is DeliveryStatus.ACCEPTED


Reporter = Callable[[DeliveryReport], None]
"""Where transports send their reports; the pipeline passes them to ``mixpanel_delivered``."""
