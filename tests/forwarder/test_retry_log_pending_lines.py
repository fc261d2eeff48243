"""``RetryLog``: retries counted into a later line are told, by a later round that needed none
once the interval has passed, or when the forwarder stops.

Review F1: with rounds retried within 5 s of a line and none retried after them, their retries
were never logged, not even at exit (two rounds, four requests, in its run).
"""

from __future__ import annotations

import logging

import pytest

from mixpanel_core.forwarder.round_reports import RETRY_LOG_INTERVAL, RetryLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def a_round(log: RetryLog, retries: int) -> None:
    for _ in range(retries):
        log.answered(OSError("connection reset"))
        log.retrying()
    log.round_ended()


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retried in" in r.getMessage()]


def test_retries_counted_after_a_line_are_told_by_a_later_round_or_at_the_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="mixpanel_core.forwarder")
    clock = Clock()
    log = RetryLog(clock)
    a_round(log, 1)  # logged at once
    clock.now = 1.0
    a_round(log, 2)  # within the interval: counted
    clock.now = 2.0
    a_round(log, 0)  # nothing retried, the interval not passed: nothing
    assert lines(caplog) == [
        "1 request(s) to Mixpanel retried in 1 delivery round(s) (first: OSError: connection reset)"
    ]
    clock.now = 1.0 + RETRY_LOG_INTERVAL
    a_round(log, 0)  # nothing retried, but what was counted is due
    assert lines(caplog)[1:] == [
        "2 request(s) to Mixpanel retried in 1 delivery round(s) (first: OSError: connection reset)"
    ]
    clock.now += 1.0
    a_round(log, 3)  # counted, within the interval of the last line
    log.finish()
    log.finish()  # told once
    assert lines(caplog)[2:] == [
        "3 request(s) to Mixpanel retried in 1 delivery round(s) (first: OSError: connection reset)"
    ]
