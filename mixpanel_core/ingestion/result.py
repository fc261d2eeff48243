"""``BatchResult``: the outcome of ``IngestionClient.send_batch``, one report per message."""

from __future__ import annotations

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.messages import Message


@attrs.frozen
class BatchResult:
    """Reports in the order the messages were given: ACCEPTED, REJECTED or FAILED each."""

    reports: tuple[DeliveryReport, ...]

    def _with(self, status: DeliveryStatus) -> tuple[DeliveryReport, ...]:
        return tuple(r for r in self.reports if r.status is status)

    @property
    def accepted(self) -> tuple[DeliveryReport, ...]:
        return self._with(DeliveryStatus.ACCEPTED)

    @property
    def rejected(self) -> tuple[DeliveryReport, ...]:
        """Refused by Mixpanel for good (with its reason and field); resending won't help."""
        return self._with(DeliveryStatus.REJECTED)

    @property
    def failed(self) -> tuple[DeliveryReport, ...]:
        """Not delivered within the retry budget; may be resent later."""
        return self._with(DeliveryStatus.FAILED)

    @property
    def ok(self) -> bool:
        """Whether every message was accepted."""
        return all(r.status is DeliveryStatus.ACCEPTED for r in self.reports)

    @property
    def undelivered(self) -> list[Message]:
        """The messages of the FAILED reports (what a caller might keep and resend)."""
        return [r.message for r in self.failed if r.message is not None]
