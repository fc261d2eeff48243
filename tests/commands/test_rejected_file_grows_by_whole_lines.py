"""The rejected file of ``send`` and ``replay-dead-letters`` only ever grows by whole lines.

A full disk left half a line at its end, and the next run appended its first line to it: one
line holding two records, which no replay can read. The disk here is a real limit of the
kernel's (``RLIMIT_FSIZE``, in a child process: writes past it are cut short, then fail), not
a mock.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

from mixpanel_core.commands.errors import InputError
from mixpanel_core.commands.rejected import RejectedFile, Rejection

from ..subprocesses import run_python

WRITE_PAST_A_LIMIT = """
import resource, signal, sys
from mixpanel_core.commands.errors import InputError
from mixpanel_core.commands.rejected import RejectedFile, Rejection

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
rejected = RejectedFile(sys.argv[1])
for sync in range(2):
    for n in range(5):
        rejected.write(Rejection("read", "invalid", "not JSON", "x" * 100 + str(n)))
    try:
        rejected.sync()
    except InputError as error:
        print(error)
        break
print(rejected.holding(10))
"""


def lines_of(path: Path) -> list[object]:
    """Each line of ``path`` as JSON (a line that is not raises)."""
    text = path.read_bytes()
    assert text.endswith(b"\n"), text[-60:]
    return [json.loads(line) for line in text.splitlines()]


def test_a_sync_the_disk_cannot_take_leaves_the_file_at_its_last_whole_line(
    tmp_path: Path,
) -> None:
    sample = RejectedFile(tmp_path / "one-line.jsonl")
    sample.write(Rejection("read", "invalid", "not JSON", "x" * 100 + "0"))
    sample.sync()  # close drops lines not synced (their chunk was not settled: R71 F2)
    sample.close()
    line = sample.path.stat().st_size
    path = tmp_path / "rejected.jsonl"
    # Room for the first sync's 5 lines, and for half of the second's.
    finished = run_python(WRITE_PAST_A_LIMIT, str(path), str(int(line * 7.5)))

    assert finished.returncode == 0, finished.stderr
    said = finished.stdout.splitlines()
    assert said[0].startswith(f"{path}: cannot write rejected records: File too large")
    # The first sync's 5 lines, and the 2 of the second that fit whole; half a line taken back.
    assert said[1] == f" (7 of them in {path})"
    assert len(lines_of(path)) == 7

    again = RejectedFile(path)
    again.write(Rejection("read", "invalid", "not JSON", "next run"))
    again.sync()
    again.close()
    assert [entry["record"] for entry in lines_of(path)][-1] == "next run"  # type: ignore[index]


WRITE_BESIDE_ANOTHER = """
import resource, signal, sys
from mixpanel_core.commands.errors import InputError
from mixpanel_core.commands.rejected import RejectedFile, Rejection

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
ours = RejectedFile(sys.argv[1])
ours.write(Rejection("read", "invalid", "not JSON", "ours-1"))
ours.sync()
with open(sys.argv[1], "ab") as other:  # another run appends, and syncs
    other.write(b'{"record": "theirs-1"}\\n')
for n in range(2, 40):
    ours.write(Rejection("read", "invalid", "not JSON", f"ours-{n}"))
try:
    ours.sync()
except InputError as error:
    print(error)
"""


def test_a_write_cut_short_takes_back_only_its_own_bytes(tmp_path: Path) -> None:
    """A run that remembered where its lines began and cut back to there deleted the lines
    another run appended since (review R34)."""
    path = tmp_path / "rejected.jsonl"
    finished = run_python(WRITE_BESIDE_ANOTHER, str(path), "4000")

    assert finished.returncode == 0, finished.stderr
    assert "File too large" in finished.stdout
    records = [entry["record"] for entry in lines_of(path)]  # type: ignore[index]
    assert records[:3] == ["ours-1", "theirs-1", "ours-2"]
    assert records[2:] == [f"ours-{n}" for n in range(2, len(records))]


def test_a_line_cut_short_before_the_file_was_opened_is_left_on_a_line_of_its_own(
    tmp_path: Path,
) -> None:
    """A run killed as it wrote; the next one's first line starts afresh."""
    path = tmp_path / "rejected.jsonl"
    path.write_bytes(b'{"whole": 1}\n{"cut sho')

    rejected = RejectedFile(path)
    rejected.write(Rejection("read", "invalid", "not JSON", "next run"))
    rejected.sync()
    rejected.close()

    first, cut, last = path.read_bytes().splitlines()
    assert (first, cut) == (b'{"whole": 1}', b'{"cut sho')
    assert json.loads(last)["record"] == "next run"


def test_a_fifo_read_by_cat_gets_every_line_of_the_run(tmp_path: Path) -> None:
    """Opened for each write, the FIFO gave its reader an end of file after the first:
    ``cat`` ended, and the next sync failed, or its lines went to nobody (review R35)."""
    fifo = tmp_path / "rejected.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        rejected = _opened_once_read(fifo)
        for sync in range(3):
            for n in range(2):
                rejected.write(Rejection("read", "invalid", "not JSON", f"{sync}-{n}"))
            rejected.sync()
            time.sleep(0.2)  # a reader that reached the end of what was written
        rejected.close()
        out, _ = reader.communicate(timeout=10)
    finally:
        reader.kill()
        reader.wait()

    records = [json.loads(line)["record"] for line in out.splitlines()]
    assert records == ["0-0", "0-1", "1-0", "1-1", "2-0", "2-1"]
    assert rejected.holding(6) == f" (in {fifo})"


def _opened_once_read(fifo: Path) -> RejectedFile:
    """``fifo`` as a rejected file, once its reader opens it (before that, with no reader,
    opening it for writing is refused at once: ENXIO)."""
    for _ in range(500):
        with contextlib.suppress(InputError):
            return RejectedFile(fifo)
        time.sleep(0.01)
    raise AssertionError(f"no reader opened {fifo}")
