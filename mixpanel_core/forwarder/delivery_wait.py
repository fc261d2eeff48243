"""``DeliveryWait``: the ``wait`` the forwarder gives each delivery, so it keeps polling Kafka.

The ingestion client sleeps only through its ``wait``: between retries (429, 5xx, network) and,
through ``WaitWhileOut``, while a request waits for its answer. Both hand the time to the
forwarder, which polls with every partition paused meanwhile, so the member stays in its group
and rebalances, the lag and the progress line go on. Between retries the delivery stops
retrying (the wait returns ``False``) once records of it belong to partitions another member
owns now: their new owner reads them again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from mixpanel_core.ingestion import WaitWhileOut
from mixpanel_core.ingestion.http import Response

POLL_WHILE_OUT_AFTER = 1.0
"""Seconds a request may be out before the forwarder polls (partitions paused) while it waits:
each such poll pauses every partition and costs a turn of the loop, so quick requests are left
alone; a slow one does not hold a rebalance, the lag or the progress line for longer than
this."""


class PausedPolling(Protocol):
    """Sleeps ``seconds`` polling Kafka with every partition paused (``Forwarder._wait``);
    with ``until_disowned`` it returns early once records of the delivery out belong to
    partitions another member owns now."""

    def __call__(self, seconds: float, *, until_disowned: bool = False) -> None: ...


class DeliveryWait(WaitWhileOut):
    """The ``wait`` a delivery is given: ``__call__`` between retries, ``while_request_out``
    while a request waits for its answer, ``request_answered`` when it has one (see
    ``WaitWhileOut``). ``disowned`` says how many records of the delivery out belong to
    partitions another member owns now. Used from the forwarder's main thread only (the
    client calls it there)."""

    def __init__(
        self,
        poll_paused: PausedPolling,
        disowned: Callable[[], int],
        clock: Callable[[], float],
    ) -> None:
        self._poll_paused = poll_paused
        self._disowned = disowned
        self._clock = clock
        self._out_since: float | None = None
        """When the request now out was first seen waiting (see ``while_request_out``)."""

    def round_started(self) -> None:
        """A delivery round starts: no request of it is out yet."""
        self._out_since = None

    def __call__(self, seconds: float) -> bool:
        """The client's wait before a retry: a paused poll, but ``False`` (stop retrying) at
        once when records of the delivery belong to partitions another member owns now; those
        of partitions still owned are put back and tried again in the next round."""
        self._out_since = None  # an abandoned request is not answered
        if not self._disowned():
            self._poll_paused(seconds, until_disowned=True)
        return not self._disowned()

    def while_request_out(self, seconds: float) -> None:
        """What the client calls while a request waits for its answer: after
        ``POLL_WHILE_OUT_AFTER`` seconds, a paused poll; before, it returns at once."""
        now = self._clock()
        if self._out_since is None:
            self._out_since = now
        if now - self._out_since >= POLL_WHILE_OUT_AFTER:
            self._poll_paused(seconds)

    def request_answered(self, answer: Response | BaseException) -> None:
        self._out_since = None
