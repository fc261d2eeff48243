"""``RetriesLogged``: one WARNING a minute per endpoint while requests to it are being retried.

Retries are what a sender does during an incident that it may outlast (a rate limit, a 503, a
network that drops connections): records are neither lost nor given up on yet, but they wait,
queues fill, and the on-call engineer must learn why before the first record is given up on,
a retry budget later. A line per retry would say the same a dozen times a second.

The count is the process's, by transport name: a client built per web request (``Mixpanel(token)``,
as official-SDK code often does) would otherwise start a count of its own each time, say its
first retry every time, and take its count with it. What is counted is said by the next line of
its endpoint, by the first call that ends once a minute has passed (``say_overdue``), or at the
exit of the process, so the lines add up to every retry.
"""

from __future__ import annotations

import logging

from mixpanel_core.ingestion.classify import Classification
from mixpanel_core.log_throttle import LogThrottle, say
from mixpanel_core.messages import Endpoint
from mixpanel_core.process_exit import at_exit

logger = logging.getLogger("mixpanel_core.ingestion")

RETRIES_LOGGED_EVERY = 60.0
"""Seconds between two lines of retries to one endpoint, by one transport name."""


class RetriesLogged:
    """Logs the retries of the requests of every client of one transport name (``of``)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._throttle: LogThrottle[Endpoint] = LogThrottle(RETRIES_LOGGED_EVERY)
        self._last: dict[Endpoint, str] = {}
        """By endpoint: what the last retry counted and not said was after."""

    @classmethod
    def of(cls, name: str) -> RetriesLogged:
        """The one of the transport ``name`` in this process."""
        found = _BY_NAME.get(name)
        if found is None:
            if not _BY_NAME:
                # Once more with the first client (see the registration at import): exit
                # hooks run the last registered first, so this one runs before those the
                # application registered until then (a logging QueueListener stopped at exit
                # takes later lines with it), and after the exit closes of the transports
                # built since, whose last retries it says too. Twice, if two threads race:
                # a run that finds nothing left says nothing.
                at_exit(_say_every_unsaid)
            found = _BY_NAME.setdefault(name, cls(name))  # one, even when two threads race
        return found

    def retrying(
        self,
        endpoint: Endpoint,
        records: int,
        answer: Classification,
        retry: int,
        delay: float,
        spent: float,
        budget: float,
    ) -> None:
        """A request of ``records`` records, ``spent`` seconds into its retry ``budget``, is
        to be retried (retry number ``retry``) in ``delay`` seconds, after ``answer``."""
        reason = answer.reason or f"HTTP {answer.http_status}"
        since = self._throttle.due(endpoint)
        if since is None:
            self._last[endpoint] = reason
            return
        more = f"; and {since} other retries to /{endpoint} since the last line" if since else ""
        say(
            logger,
            logging.WARNING,
            "%s: retrying %d record(s) to /%s in %.1fs (retry %d, %.1fs of its %gs retry "
            "budget spent%s; one line a minute while retries go on): %s",
            self._name,
            records,
            endpoint,
            delay,
            retry,
            spent,
            budget,
            more,
            reason,
        )

    def not_retried(self, endpoint: Endpoint) -> None:
        """The retry announced last to ``endpoint`` was not made (its wait was cut short):
        uncounted, if it was counted and not said."""
        self._throttle.withdraw(endpoint)

    def say_overdue(self) -> None:
        """Say what was counted for endpoints a minute or more after their last line."""
        for endpoint, since in self._throttle.overdue():
            self._say_more(endpoint, since)

    def say_unsaid(self) -> None:
        """Say everything counted since each endpoint's last line (the process exits)."""
        for endpoint, since in self._throttle.take_unsaid():
            self._say_more(endpoint, since)

    def _say_more(self, endpoint: Endpoint, since: int) -> None:
        say(
            logger,
            logging.WARNING,
            "%s: %d more retries to /%s since the last line (the last after: %s)",
            self._name,
            since,
            endpoint,
            self._last.get(endpoint, "an answer not kept"),
        )


_BY_NAME: dict[str, RetriesLogged] = {}


def _say_every_unsaid() -> None:
    for retries in list(_BY_NAME.values()):
        retries.say_unsaid()


# Also at import, so also last: what an application's own exit hook, registered before its
# first client, sends at exit (a last event) is said as well, if its logging still stands.
at_exit(_say_every_unsaid)
