"""Progress on stderr: a live line (count, rate, ETA) on a terminal, and a final summary always."""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_INTERVAL = 0.2


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressLine:
    """Redraws one line at most five times a second; silent when ``stream`` is not a TTY.

    The ETA comes from the share of the file's bytes read so far (compressed bytes for gzip),
    which needs no first pass to count records.
    """

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._label = ""
        self._size = 0
        self._started = time.monotonic()
        self._drawn = 0.0

    def start(self, label: str, size: int) -> None:
        self._label, self._size = label, size
        self._started = time.monotonic()
        self._drawn = 0.0

    def update(self, records: int, bytes_read: int, *, force: bool = False) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if not force and now - self._drawn < REDRAW_INTERVAL:
            return
        self._drawn = now
        elapsed = max(now - self._started, 1e-6)
        text = f"{self._label}: {records:,} records  {records / elapsed:,.0f}/s"
        if self._size and bytes_read:
            share = min(bytes_read / self._size, 1.0)
            eta = elapsed * (1 - share) / share
            text += f"  {share:.0%}  ETA {format_duration(eta)}"
        self.stream.write(f"\r{text}\x1b[K")
        self.stream.flush()

    def end(self) -> None:
        """Leave the live line (the summary is printed on a line of its own)."""
        if self.live and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0.0

    def say(self, text: str) -> None:
        """Print a line of its own (a warning, the summary), off the live line."""
        self.end()
        self.stream.write(text + "\n")
        self.stream.flush()
