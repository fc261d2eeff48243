"""``Outcomes``: each record's final outcome, held until after the turn's commit, then reported.

Given a ``report`` function (``Pipeline.report``, when some plugin implements
``mixpanel_delivered``), each record's final outcome is reported once it is true: ACCEPTED once
Mixpanel accepted it; REJECTED (Mixpanel refused it) or DROPPED (undecodable, or refused by
the ``mixpanel_validate`` hooks) once its dead letter is acknowledged. Reports wait until
after each turn's commit, so an observer never delays one. Records retried, abandoned at
shutdown or dropped at a rebalance are read again later and get no report now.
"""

from __future__ import annotations

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter
from mixpanel_core.forwarder.decode import Poison

REPORTER = "forwarder"
"""``DeliveryReport.transport`` of the forwarder's reports (its ingestion client's name too)."""


class Outcomes:
    """The outcomes gathered since the last ``report``; with ``report`` ``None`` (nothing
    observes them) none is kept, and callers build none (see ``observed``)."""

    def __init__(self, report: Reporter | None) -> None:
        self._report = report
        self._kept: list[DeliveryReport] | None = [] if report is not None else None
        """Final outcomes waiting to be reported after the turn's commit (``None``: unobserved)."""

    @property
    def observed(self) -> bool:
        """Whether anything observes the outcomes: if not, building one is wasted work."""
        return self._kept is not None

    def keep(self, outcome: DeliveryReport) -> None:
        """Keep ``outcome`` for ``report`` (an accepted record's, a dead letter's once
        acknowledged)."""
        if self._kept is not None:
            self._kept.append(outcome)

    def of_poison(self, poison: Poison) -> DeliveryReport | None:
        """The report of a record dead-lettered at decoding; ``None`` when nothing observes.

        DROPPED, as the pipeline reports what its ``mixpanel_validate`` hooks refuse: never
        sent. ``message`` is ``None`` when the record could not become a message at all.
        """
        if self._kept is None:
            return None
        return DeliveryReport(
            poison.message, DeliveryStatus.DROPPED, REPORTER, poison.reason, field=poison.field
        )

    def report(self) -> None:
        """Hand the outcomes gathered since the last call to ``report``.

        Called after the commit, so that a slow observer never holds one back; ``report``
        (``Pipeline.report``) logs what an observer raises and carries on.
        """
        kept = self._kept
        if not kept or self._report is None:
            return
        self._kept = []
        report = self._report
        for outcome in kept:
            report(outcome)
