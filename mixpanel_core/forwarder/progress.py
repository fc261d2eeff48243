"""Telling people how the forwarder is doing: a log line now and then, a live line in a terminal."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from mixpanel_core.forwarder.metrics import ForwarderMetrics

logger = logging.getLogger("mixpanel_core.forwarder")

LIVE_LINE_INTERVAL = 0.5


def summary(metrics: ForwarderMetrics) -> str:
    """One line: every counter and the total lag."""
    counters = " ".join(f"{name}={value}" for name, value in metrics.counters().items())
    return f"{counters} lag={metrics.total_lag}"


class ProgressReporter:
    """Logs ``summary`` every ``log_interval`` seconds; redraws a live line on a terminal."""

    def __init__(
        self, metrics: ForwarderMetrics, log_interval: float, stream: TextIO | None = None
    ) -> None:
        self._metrics = metrics
        self._log_interval = log_interval
        self._stream = stream or sys.stdout
        self._live = self._stream.isatty()
        self._logged_at: float | None = None
        self._drawn_at: float | None = None
        self._drawn_consumed = 0

    def tick(self, now: float) -> None:
        """Called from the main loop; cheap unless a line is due."""
        if self._logged_at is None:
            self._logged_at = self._drawn_at = now
        if self._log_interval and now - self._logged_at >= self._log_interval:
            self._logged_at = now
            logger.info("forwarder progress: %s", summary(self._metrics))
        if self._live and self._drawn_at is not None and now - self._drawn_at >= LIVE_LINE_INTERVAL:
            rate = (self._metrics.consumed - self._drawn_consumed) / (now - self._drawn_at)
            self._drawn_at, self._drawn_consumed = now, self._metrics.consumed
            self._stream.write(f"\r{summary(self._metrics)} rate={rate:,.0f}/s\x1b[K")
            self._stream.flush()

    def finish(self) -> None:
        """End the live line and log the final counters."""
        if self._live:
            self._stream.write("\n")
            self._stream.flush()
        logger.info("forwarder stopped: %s", summary(self._metrics))
