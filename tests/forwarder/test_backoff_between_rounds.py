"""The wait between delivery rounds grows with each round that fails in a row, and starts over
after a round that succeeds.

docs/forwarder.md, *Backpressure without rebalances*: records still undelivered after the HTTP
retry budget are tried again after a wait on the same exponential schedules, so consecutive
rounds wait longer and longer (for 429, from 2 s up to 60 s). Unit test with the scripted
consumer of ``test_loop``: the retry policy given to the forwarder records which step of its
schedule each wait is, and waits not at all.
"""

from __future__ import annotations

from collections.abc import Callable

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion import RetryPolicy

from .test_loop import ScriptedConsumer, _partition, _records, run_rounds


def _recording_policy(steps: list[int]) -> RetryPolicy:
    class Recording(RetryPolicy):
        def delay(
            self,
            attempt: int,
            *,
            rate_limited: bool = False,
            retry_after: float | None = None,
            rand: Callable[[], float] = lambda: 0.0,
        ) -> float:
            steps.append(attempt)
            return 0.0

    return Recording()


def test_consecutive_failed_rounds_back_off_further_and_a_success_starts_over() -> None:
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(3))}, {p0: _records(0, range(3, 6))}]
    # Three failed rounds of 0-2, then accepted; one failed round of 3-5, then accepted.
    statuses = [DeliveryStatus.FAILED] * 3 + [DeliveryStatus.ACCEPTED]
    statuses += [DeliveryStatus.FAILED, DeliveryStatus.ACCEPTED]
    steps: list[int] = []

    run_rounds(consumer, statuses, retry_policy=_recording_policy(steps))

    assert statuses == [], "every scripted round was delivered"
    assert steps == [1, 2, 3, 1], "the schedule's step of each wait between rounds"
    assert consumer.commits[-1] == {p0: 6}
