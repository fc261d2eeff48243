"""The demos `make demo` runs keep working: each runs to completion and reports no loss."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kafka_pipeline_demo_delivers_everything_and_dead_letters_the_poison_record() -> None:
    out = run_example("kafka_pipeline.py", "--events", "300")
    assert "produced 302 messages (+1 poison record)" in out
    assert "delivered to the emulator: 302" in out
    assert "unique $insert_ids: 300, duplicates: 0" in out
    assert "dead-lettered: 1" in out


def test_multiprocess_demo_delivers_every_tracked_event_once() -> None:
    out = run_example("multiprocess_events.py", "--trackers", "2", "--events", "500")
    assert "tracked:             1000 events in 2 tracker processes" in out
    assert "delivered (sender):  1000 accepted" in out
    assert "received (emulator): 1000 events, 1000 unique $insert_id" in out


def test_simple_event_demo_reaches_the_emulator() -> None:
    out = run_example("simple_event.py")
    assert "Script run" in out
    assert "Lovelace" in out
