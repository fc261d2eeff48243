"""What a ``BackgroundSender`` makes of its outcomes: reports, dead letters and a warning for
every record not delivered, reports of accepted ones when observed, and of those dropped."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from mixpanel_core.dead_letter import DeadLetterFile
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus, Reporter, reports_for
from mixpanel_core.ingestion import EncodedPair, Outcome
from mixpanel_core.messages import Endpoint
from mixpanel_core.sender_records import Record, by_endpoint, rebuilt_messages

# The logger these lines had while they were written in ``buffering``: a deployment that routes
# or silences ``mixpanel_core.buffering`` still sees (or hides) them all.
logger = logging.getLogger("mixpanel_core.buffering")


class SenderSettling:
    """Settles the outcomes of the sender named ``name``, on whichever thread settles them.

    ``report`` receives a report for every record not delivered, and with ``observed`` one for
    every record accepted too; those not delivered also go to ``dead_letter`` (when there is
    one) and to a warning. It holds no reference to its sender.
    """

    def __init__(
        self,
        name: str,
        report: Reporter,
        observed: bool,
        dead_letter: DeadLetterFile | None,
    ) -> None:
        self.name = name
        self.report = report
        self.observed = observed
        """Whether anyone reads reports of accepted records (and so wants their messages)."""
        self.dead_letter = dead_letter

    def failed(
        self,
        endpoint: Endpoint,
        items: Sequence[EncodedPair],
        reason: str,
        *,
        maybe_applied: bool = False,
    ) -> Outcome:
        return Outcome(
            endpoint, items, DeliveryStatus.FAILED, self.name, reason, maybe_applied=maybe_applied
        )

    def settle(self, outcomes: Sequence[Outcome], *, warn: bool = True) -> None:
        """Report, dead-letter and log every record not delivered; report accepted ones
        only when observed.

        Unobserved, accepted records get no report at all: that is most of the sender's
        work per record saved, and nothing observable is lost (the counts ``flush`` and
        ``close`` need are kept by the queue and the thread).
        """
        observed = self.observed
        lost: list[DeliveryReport] = []
        told: list[DeliveryReport] = []
        for outcome in outcomes:
            if outcome.ok and not observed:
                continue
            reports = outcome.reports()
            told.extend(reports)
            if not outcome.ok:
                lost.extend(reports)
        self._tell(lost, told, warn)

    def settle_reports(self, reports: Sequence[DeliveryReport], *, warn: bool = True) -> None:
        self._tell([r for r in reports if not r.ok], reports, warn)

    def give_up(
        self, records: list[Record], reason: str, *, warn: bool = True, maybe_applied: bool = False
    ) -> None:
        """Report and dead-letter ``records`` as not delivered for ``reason``; ``warn``: and
        say so in a warning (``warn_given_up``, for a caller settling them a part at a time);
        ``maybe_applied``: their request was out (see ``DeliveryReport.maybe_applied``)."""
        outcomes = [
            self.failed(e, pairs, reason, maybe_applied=maybe_applied)
            for e, pairs in by_endpoint(records)
        ]
        self.settle(outcomes, warn=warn)

    def warn_given_up(self, count: int, reason: str) -> None:
        if count:
            logger.warning("%s: %d record(s) not delivered; first: %s", self.name, count, reason)

    def dropped(self, records: list[Record], reason: str) -> None:
        """Report the records the full policy dropped (logged and counted by the queue).

        Called only when ``report`` is not ``ignore_report``: the sender checks, so that a drop
        nobody hears of costs no call (under ``drop_newest`` it is part of ``submit``).
        """
        messages = rebuilt_messages(records)
        self._report_each(reports_for(messages, DeliveryStatus.DROPPED, self.name, reason))

    def _tell(
        self, lost: list[DeliveryReport], reports: Sequence[DeliveryReport], warn: bool = True
    ) -> None:
        held: BaseException | None = None
        if lost:
            if self.dead_letter is not None:
                try:
                    self.dead_letter.write(lost)
                except Exception:
                    raise
                except BaseException as interruption:
                    held = interruption  # the reports are made first: see _report_each
            if warn:
                self.warn_given_up(len(lost), lost[0].reason or "")
        try:
            self._report_each(reports)
        except BaseException as interruption:
            held = held or interruption
        if held is not None:
            raise held

    def _report_each(self, reports: Iterable[DeliveryReport]) -> None:
        """Hand each report to ``report``; one that raises is logged and the rest go on.

        A transport's ``report`` may be any callable (not only the pipeline's, which guards
        its plugins): its bug must neither end the sender thread nor silence later reports.
        An interruption in one (a signal's ``SystemExit``, Ctrl-C, while ``close`` gives up)
        is raised once the others are made: their records are settled nowhere else.
        """
        failures = 0
        held: BaseException | None = None
        for report in reports:
            try:
                self.report(report)
            except Exception:
                failures += 1
                if failures == 1:
                    logger.exception("%s: the report callback failed", self.name)
            except BaseException as interruption:
                held = held or interruption
        if failures > 1:
            logger.error("%s: the report callback failed %d times more", self.name, failures - 1)
        if held is not None:
            raise held
