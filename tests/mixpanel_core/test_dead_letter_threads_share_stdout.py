"""Threads writing dead letters to ``/dev/stdout`` at once (a container's log, read through a
pipe) never tear each other's lines. The standard streams are written through the process's own
descriptor, with no ``flock`` of a file opened per write: the DeadLetterFile's own lock keeps one
thread's batch whole while another waits for the pipe's reader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

THREADS = """
import sys, threading
sys.path.insert(0, {tests!r})
from test_dead_letter_file import _reports
from mixpanel_core.dead_letter import DeadLetterFile

dead_letters = DeadLetterFile("/dev/stdout")
batch = _reports(50, size=4000)


def write_five_times():
    for _ in range(5):
        dead_letters.write(batch)


threads = [threading.Thread(target=write_five_times) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert dead_letters.unwritten == 0
"""


def test_eight_threads_writing_big_batches_to_a_piped_stdout_keep_every_line_whole() -> None:
    # Each batch (about 200 KB) is more than a pipe holds: written without the lock, a thread
    # waiting for room had another thread's bytes written into the middle of its line.
    script = THREADS.format(tests=str(Path(__file__).parent))
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 8 * 5 * 50
    assert all(orjson.loads(line)["record"]["properties"]["pad"] == "x" * 4000 for line in lines)
