"""``RetryPolicy``: the one backoff schedule, used by every sender and by the forwarder."""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with jitter, and a time budget (and optionally a count of retries)
    after which a sender gives up.

    Rate limiting (429) follows Mixpanel's advice: start near ``rate_limit_base`` (2 s) and
    double up to ``rate_limit_cap`` (60 s). Other transient failures (5xx, timeouts, resets)
    start at ``base`` and double up to ``cap``. A ``Retry-After`` from the server is a floor,
    even above the cap: a sender that cannot wait that long (the client, past its retry
    budget) gives up rather than try sooner.
    """

    base: float = 0.5
    cap: float = 30.0
    rate_limit_base: float = 2.0
    rate_limit_cap: float = 60.0
    budget: float = 60.0
    """Seconds a request may spend on retries, counted from its own first attempt."""
    max_retries: int | None = None
    """Retries of one request at most (``None``: as many as fit in ``budget``)."""

    def may_retry(self, retries: int) -> bool:
        """Whether retry number ``retries`` (1 for the first) may be made, budget aside."""
        return self.max_retries is None or retries <= self.max_retries

    def delay(
        self,
        attempt: int,
        *,
        rate_limited: bool = False,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry).

        "Equal jitter": half the exponential step is fixed and half random, so many senders
        hit by the same outage spread out without any of them retrying almost at once.
        """
        base, cap = (
            (self.rate_limit_base, self.rate_limit_cap) if rate_limited else (self.base, self.cap)
        )
        # The doubling stops at 2 ** 1000: 2.0 ** 1024 raises OverflowError, and a long
        # outage retried with a short backoff reaches that many retries.
        step = min(cap, base * 2.0 ** min(max(0, attempt - 1), 1000))
        wait = step / 2.0 + rand() * step / 2.0
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    def remaining(self, started: float, now: float, deadline: float | None = None) -> float:
        """Seconds left to retry in, given when the first attempt started (monotonic clock)."""
        left = started + self.budget - now
        if deadline is not None:
            left = min(left, deadline - now)
        return left
