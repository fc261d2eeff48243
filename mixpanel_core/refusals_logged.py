"""``RefusalsLogged``: one ERROR a minute per endpoint while Mixpanel refuses its credentials.

Retrying a refusal cannot help, but what is queued is still sent (and dead-lettered when
refused too): holding it would only fill the queue until records are dropped. The line for
each request refused said the same thing over and over, a dozen times a second.
"""

from __future__ import annotations

import logging

from mixpanel_core.errors import AuthenticationError
from mixpanel_core.log_throttle import LogThrottle, say
from mixpanel_core.messages import Endpoint

# The logger these lines had while they were written in ``buffering``: a deployment that routes
# or silences ``mixpanel_core.buffering`` still sees (or hides) them all.
logger = logging.getLogger("mixpanel_core.buffering")

REFUSALS_LOGGED_EVERY = 60.0
"""Seconds between two log lines of refusals of one endpoint's credentials."""


class RefusalsLogged:
    """Logs the refusals of one buffered sender's requests (its ``name`` in each line). Holds
    nothing of the sender, so its thread can say what is left when the sender is freed."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._throttle: LogThrottle[Endpoint] = LogThrottle(REFUSALS_LOGGED_EVERY)

    def refused(self, endpoint: Endpoint, error: AuthenticationError, count: int) -> None:
        """A refusal of credentials stopped ``count`` records: the first is logged, then one
        line a minute for the endpoint, with how many came between."""
        since = self._throttle.due(endpoint, count)
        if since is not None:
            more = f" (and {since} before them since the last line)" if since else ""
            message = "%s: %d record(s) not delivered%s: %s"
            say(logger, logging.ERROR, message, self._name, count, more, error)

    def say_unsaid(self) -> None:
        """Log the refusals counted since each endpoint's last line (the sender is closed, or
        freed: it says nothing after, and the lines must add up to every record refused)."""
        for endpoint, since in self._throttle.take_unsaid():
            say(
                logger,
                logging.ERROR,
                "%s: %d more record(s) of /%s not delivered since the last line, refused as "
                "that line says",
                self._name,
                since,
                endpoint,
            )
