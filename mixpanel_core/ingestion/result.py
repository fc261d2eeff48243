"""``BatchResult``: the outcome of ``IngestionClient.send_batch``, one report per message.

The client settles records a request at a time, and every record of a request shares its
fate (but for strict ``/import`` partial failures), so it records one ``Outcome`` per run of
records rather than one ``DeliveryReport`` per record. Reports are built from the outcomes
only when asked for: a sender that nobody observes then spends nothing per accepted record.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, reports_for
from mixpanel_core.ingestion.encoding import EncodedPair, message_in
from mixpanel_core.messages import Endpoint, Message


@attrs.frozen
class Outcome:
    """What became of a run of records: all of them share the status and its details."""

    endpoint: Endpoint
    """Where the records went (a message the sender did not keep is rebuilt for it)."""
    items: Sequence[EncodedPair]
    status: DeliveryStatus
    transport: str
    reason: str | None = None
    http_status: int | None = None
    attempts: int = 0
    field: str | None = None
    retry_after: float | None = None
    """For FAILED records: what the last answer's ``Retry-After`` asked to wait, if anything."""
    maybe_applied: bool = False
    """Not accepted, after an attempt that may have reached Mixpanel unanswered (see
    ``Call.doubt``), or refused with others by a ``status: 0`` naming none of them (see
    ``narrowing.refused_unnamed``)."""

    @property
    def ok(self) -> bool:
        return self.status is DeliveryStatus.ACCEPTED

    def reports(self) -> list[DeliveryReport]:
        """One report per record, in order."""
        return reports_for(
            [message_in(self.endpoint, item) for item in self.items],
            self.status,
            self.transport,
            self.reason,
            self.http_status,
            self.attempts,
            self.field,
            self.retry_after,
            self.maybe_applied,
        )


@attrs.frozen
class BatchResult:
    """Reports in the order the messages were given: ACCEPTED, REJECTED or FAILED each."""

    outcomes: tuple[Outcome, ...]
    """The runs of records sharing an outcome, in the order the messages were given."""

    @functools.cached_property
    def reports(self) -> tuple[DeliveryReport, ...]:
        """One report per message, in the order the messages were given."""
        return tuple(itertools.chain.from_iterable(o.reports() for o in self.outcomes))

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
        return all(o.ok for o in self.outcomes)

    @property
    def undelivered(self) -> list[Message]:
        """The messages of the FAILED reports (what a caller might keep and resend)."""
        return [r.message for r in self.failed if r.message is not None]
