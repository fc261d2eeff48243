"""The progress line: count, rate and ETA on a terminal; nothing when stderr is not one."""

from __future__ import annotations

import io

from mixpanel_core.commands.progress import ProgressLine, format_duration


def test_the_live_line_shows_count_rate_share_and_eta() -> None:
    stream = io.StringIO()
    progress = ProgressLine(stream, live=True)
    progress.start("events.ndjson", size=1000)
    progress.update(2500, bytes_read=250, force=True)
    line = stream.getvalue()
    assert line.startswith("\revents.ndjson: 2,500 records  ")
    assert "/s  25%  ETA 0:0" in line
    progress.say("sent 2,500 records")
    assert stream.getvalue().endswith("\nsent 2,500 records\n")


def test_off_a_terminal_only_the_summary_is_written() -> None:
    stream = io.StringIO()
    progress = ProgressLine(stream)  # StringIO is not a TTY
    progress.start("events.ndjson", size=1000)
    progress.update(10, bytes_read=500, force=True)
    progress.say("sent 10 records")
    assert stream.getvalue() == "sent 10 records\n"


def test_durations_read_as_hours_minutes_seconds() -> None:
    assert format_duration(3725.9) == "1:02:05"
