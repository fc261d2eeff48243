"""What one ``send_batch`` call shares between its requests, and what its caller passes in:
the ``wait`` that does all of its waiting, the deadline, and whom to tell what it settles."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import attrs

from mixpanel_core.ingestion.http import Response
from mixpanel_core.ingestion.result import Outcome
from mixpanel_core.ingestion.retry import RetryPolicy

MAYBE_APPLIED = (
    "Mixpanel may have applied them: an attempt that may have reached it got no answer "
    "(a profile update such as $add sent again is applied twice)"
)
"""Said of records that did not end ACCEPTED after an attempt that may have been applied (see
``Call.doubt``): a dead letter of them needs checking before a replay."""

Wait = Callable[[float], bool | None]
"""Sleeps for the given seconds before a retry; the forwarder passes one that keeps polling
Kafka meanwhile. ``False`` says the wait was cut short and the call is to stop: the request
waiting to be retried is reported FAILED, no other request of the call starts, and what was
settled before keeps its outcome. Anything else (``None``, what ``time.sleep`` returns) goes on.
"""


@runtime_checkable
class WaitWhileOut(Protocol):
    """A ``Wait`` that is also kept busy while a request is out, instead of the client
    sleeping on its answer (the forwarder's, which keeps polling Kafka so its consumer group
    can rebalance meanwhile): see ``posting.Poster._post_watched``."""

    def __call__(self, seconds: float) -> bool | None: ...

    def while_request_out(self, seconds: float) -> None:
        """Called for ``posting.WATCH_INTERVAL`` at a time while the request is out; what it
        returns is ignored (the request is out: only the deadline abandons it)."""

    def request_answered(self, answer: Response | BaseException) -> None:
        """The ``Response``, or the exception, that ended the request."""


Settled = Callable[[Sequence[Outcome]], None]
"""Told, on the calling thread, the outcomes of records as the call settles them: records it
will not send again (accepted, rejected, failed, or not sent at all). Every record of the call
is in exactly one announcement, made once its fate is known, with the status it has in what
the call returns or raises; a buffered sender learns this way, while a call still runs, which
of its records Mixpanel already answered. It must not raise.
"""

Deadline = float | Callable[[], float | None] | None
"""When a send must end, on the ``time.monotonic()`` clock: a fixed value, or a function that
says the deadline now (``None``: none yet), for a deadline that may be set or brought forward
while a request is out (the forwarder's, which SIGTERM starts)."""

PAST_DEADLINE = "not sent: the deadline passed first"

STOPPED = "not sent: the call was stopped first (a wait before a retry was cut short)"


class Call:
    """What one ``send_batch`` call shares between its requests: the retry policy, the
    deadline, whether the caller's ``wait`` stopped it, and whom to tell what it settles.

    The retry budget is not the call's: each request's starts at its own first attempt
    (``started``, passed along; the halves of a split share their batch's), so a request
    sent late in a long call gets the same budget as the first one."""

    def __init__(
        self,
        policy: RetryPolicy,
        wait: Wait,
        deadline: Deadline,
        on_settled: Settled | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.policy = policy
        self._wait = wait
        self._deadline = deadline
        self._on_settled = on_settled
        self._stop = stop
        """Asked before each request: whether the caller has stopped the call since."""
        self.movable = callable(deadline)
        """Whether the deadline may change while a request is out (see ``Deadline``)."""
        self.stopped = False
        """Whether a wait was cut short (see ``Wait``): no request of the call starts since."""
        self.too_large: int | None = None
        """The size of the smallest body a 413 refused among the halves of the request being
        delivered: a body of several records as large is split without being sent. A
        server whose limit is below a record cost a request of n records 2n - 1 requests; now
        about n. Forgotten at the next request of the call: a stray 413 (a proxy's, a fault)
        splits only its own request."""
        self._doubted: set[int] = set()
        """The records (by the identity of their JSON) of an attempt that may have reached
        Mixpanel without an answer (``Classification.maybe_received``): any outcome of theirs
        but ACCEPTED says that Mixpanel may have applied them, whatever answered later, also
        to the halves of a split."""

    @property
    def deadline(self) -> float | None:
        """The deadline as it stands now."""
        deadline = self._deadline
        return deadline() if callable(deadline) else deadline

    def remaining(self, started: float) -> float:
        """Seconds left to retry in: within the retry budget of the request whose first
        attempt was at ``started``, and before the deadline."""
        return self.policy.remaining(started, time.monotonic(), self.deadline)

    def budget_left(self, started: float) -> float:
        """Seconds left of the retry budget started at ``started``, whatever the deadline."""
        return self.policy.remaining(started, time.monotonic())

    @property
    def busy_while_out(self) -> WaitWhileOut | None:
        """The caller's wait, when it is one to keep busy while a request is out."""
        wait = self._wait
        return wait if isinstance(wait, WaitWhileOut) else None

    def past_deadline(self) -> bool:
        deadline = self.deadline
        return deadline is not None and time.monotonic() >= deadline

    def wait(self, seconds: float) -> bool:
        """The caller's wait; ``False`` once it was cut short, which stops the call."""
        if self._wait(seconds) is False:
            self.stopped = True
        return not self.stopped

    def doubt(self, batch: Sequence[tuple[object, bytes]]) -> None:
        """Note that Mixpanel may have applied ``batch`` (see ``_doubted``)."""
        self._doubted.update(id(data) for _, data in batch)

    def settle(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Announce ``outcomes`` (see ``Settled``), then return them. Called once per set of
        outcomes, where it is made, never where halves or groups are put back together: every
        outcome passes here once, which is where a doubt is added to its reason."""
        if self._doubted:
            outcomes = [self._with_doubt(outcome) for outcome in outcomes]
        if self._on_settled is not None and outcomes:
            self._on_settled(outcomes)
        return outcomes

    def _with_doubt(self, outcome: Outcome) -> Outcome:
        if outcome.ok or not any(id(data) in self._doubted for _, data in outcome.items):
            return outcome
        reason = f"{outcome.reason}; {MAYBE_APPLIED}" if outcome.reason else MAYBE_APPLIED
        return attrs.evolve(outcome, reason=reason, maybe_applied=True)

    def why_not_send(self) -> str | None:
        """Why no request may start now (the call was stopped, or its deadline passed), if so.

        Asked before every request, the halves of a split too, which start without a wait: a
        caller that stops the call while a request is out (``stop``: the buffered sender's
        ``close`` giving up) had it go on splitting once the answer came (review R75 F2)."""
        if self.stopped or (self._stop is not None and self._stop()):
            self.stopped = True
            return STOPPED
        if self.past_deadline():
            return PAST_DEADLINE
        return None
