"""``RetriesLogged``: one WARNING a minute per endpoint while requests to it are being retried.

Retries are what a sender does during an incident that it may outlast (a rate limit, a 503, a
network that drops connections): records are neither lost nor given up on yet, but they wait,
queues fill, and the on-call engineer must learn why before the first record is given up on,
a retry budget later. A line per retry would say the same a dozen times a second.
"""

from __future__ import annotations

import logging

from mixpanel_core.ingestion.classify import Classification
from mixpanel_core.log_throttle import LogThrottle
from mixpanel_core.messages import Endpoint

logger = logging.getLogger("mixpanel_core.ingestion")

RETRIES_LOGGED_EVERY = 60.0
"""Seconds between two lines of retries to one endpoint."""


class RetriesLogged:
    """Logs the retries of one client's requests (its transport ``name`` in each line)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._throttle: LogThrottle[Endpoint] = LogThrottle(RETRIES_LOGGED_EVERY)

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
        retried (retry number ``retry``) in ``delay`` seconds, after ``answer``."""
        since = self._throttle.due(endpoint)
        if since is None:
            return
        more = f"; and {since} other retries to /{endpoint} since the last line" if since else ""
        logger.warning(
            "%s: retrying %d record(s) to /%s in %.1fs (retry %d, %.1fs of its %.0fs retry "
            "budget spent%s; one line a minute while retries go on): %s",
            self._name,
            records,
            endpoint,
            delay,
            retry,
            spent,
            budget,
            more,
            answer.reason or f"HTTP {answer.http_status}",
        )

    def say_unsaid(self) -> None:
        """Log the retries counted since each endpoint's last line (the client is closed: the
        lines must add up to every retry)."""
        for endpoint, since in self._throttle.take_unsaid():
            logger.warning(
                "%s: %d more retries to /%s since the last line", self._name, since, endpoint
            )
