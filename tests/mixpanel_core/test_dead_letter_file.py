"""``DeadLetterFile`` where the file is not a plain writable file: a FIFO to a log shipper, a
write-only file, a full disk, a write cut short. Each loss is counted and logged with how many
records it was and which came first; nothing claims a record was kept that was not."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pytest

from mixpanel_core.dead_letter import DeadLetterFile
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.messages import message_from_record

NOBODY = 65534


def _reports(count: int, size: int = 10) -> list[DeliveryReport]:
    reports = []
    for i in range(count):
        record = {
            "event": "e",
            "properties": {
                "token": "t",
                "distinct_id": "d",
                "time": 1,
                "$insert_id": f"id{i}",
                "pad": "x" * size,
            },
        }
        message = message_from_record("track", record)
        reports.append(DeliveryReport(message, DeliveryStatus.FAILED, "direct", reason="HTTP 503"))
    return reports


def _insert_ids(data: bytes) -> list[str]:
    return [orjson.loads(line)["record"]["properties"]["$insert_id"] for line in data.splitlines()]


def test_a_fifo_read_by_a_log_shipper_gets_every_line(tmp_path: Path) -> None:
    # Opened read-write and seeked before, which a pipe refuses: every dead letter was lost.
    fifo = tmp_path / "dead-letters.fifo"
    os.mkfifo(fifo)
    # The shipper holds the FIFO open for reading before anything is written, so the writer
    # finds a reader, and what it writes waits in the pipe however late the shipper reads.
    shipper = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    dead_letters = DeadLetterFile(fifo)

    dead_letters.write(_reports(3))

    received = _read_lines(shipper, 3)
    os.close(shipper)
    assert _insert_ids(received) == ["id0", "id1", "id2"]
    assert dead_letters.unwritten == 0


def _read_lines(fd: int, count: int) -> bytes:
    """What the non-blocking ``fd`` gives until ``count`` whole lines (within 10 s)."""
    data = b""
    deadline = time.monotonic() + 10
    while data.count(b"\n") < count and time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:  # a writer holds it open, nothing written yet
            chunk = b""
        if not chunk:
            time.sleep(0.01)
        data += chunk
    return data


def test_a_fifo_nobody_reads_is_a_counted_loss_not_a_hang(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fifo = tmp_path / "dead-letters.fifo"
    os.mkfifo(fifo)
    dead_letters = DeadLetterFile(fifo)

    dead_letters.write(_reports(2))

    assert dead_letters.unwritten == 2
    assert "could not write 2 of 2 record(s)" in caplog.text


WRITE_ONLY = """
import os, sys
sys.path.insert(0, {tests!r})
from test_dead_letter_file import _reports
from mixpanel_core.dead_letter import DeadLetterFile
reports = _reports(3)  # everything imported and built before giving up root's rights
if os.getuid() == 0:
    os.setgid({nobody})
    os.setuid({nobody})
dead_letters = DeadLetterFile({path!r})
dead_letters.write(reports)
print(dead_letters.unwritten)
"""


def test_a_write_only_file_is_written() -> None:
    # Opened for reading too before ("a+b"): a file its writer may not read lost every line.
    # Root reads any file, so as root the write runs as nobody, in a directory nobody reaches
    # (pytest's own are private to their owner).
    where = Path(tempfile.mkdtemp())
    try:
        where.chmod(0o755)
        path = where / "dead-letters.jsonl"
        path.write_bytes(b"")
        path.chmod(0o200)
        if os.getuid() == 0:
            os.chown(path, NOBODY, NOBODY)
        script = WRITE_ONLY.format(tests=str(Path(__file__).parent), nobody=NOBODY, path=str(path))

        done = subprocess.run(
            [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
        )

        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "0", done.stderr
        path.chmod(0o600)
        assert _insert_ids(path.read_bytes()) == ["id0", "id1", "id2"]
    finally:
        shutil.rmtree(where)


def test_a_full_disk_is_counted_and_names_the_first_record_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead_letters = DeadLetterFile("/dev/full")

    with caplog.at_level(logging.ERROR, logger="mixpanel_core.dead_letter"):
        dead_letters.write(_reports(3))

    assert dead_letters.unwritten == 3
    [line] = [r.getMessage() for r in caplog.records]
    assert "could not write 3 of 3 record(s) to /dev/full (No space left on device)" in line
    assert "the first not written: /track record $insert_id id0" in line


CUT_SHORT = """
import resource, signal, sys
sys.path.insert(0, {tests!r})
from test_dead_letter_file import _reports
from mixpanel_core.dead_letter import DeadLetterFile
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of the signal
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
dead_letters = DeadLetterFile({path!r})
dead_letters.write(_reports(10, size=200))
print(dead_letters.unwritten)
"""


def test_a_write_cut_short_counts_only_the_lines_not_written_whole(tmp_path: Path) -> None:
    # Counted before as the chunks of the write, a mended line's separator included, and
    # lines already written whole were counted lost too.
    path = tmp_path / "dead-letters.jsonl"
    path.write_bytes(b'{"a torn line')
    script = CUT_SHORT.format(tests=str(Path(__file__).parent), limit=1200, path=str(path))

    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    unwritten = int(done.stdout)
    data = path.read_bytes()
    # The part of a line the write made before the limit is taken back: the file ends a line
    # (it ended in a fragment that the next line was appended to).
    assert len(data) < 1200
    assert data.endswith(b"\n")
    whole = data.split(b"\n")[1:-1]  # after the torn line, up to the cut
    assert 0 < len(whole) < 10
    assert unwritten == 10 - len(whole)
    assert _insert_ids(b"\n".join(whole)) == [f"id{i}" for i in range(len(whole))]
    assert f"could not write {unwritten} of 10 record(s)" in done.stderr
    assert f"$insert_id id{len(whole)};" in done.stderr

    # The next write starts a line of its own after the cut one.
    DeadLetterFile(path).write(_reports(1))
    assert _insert_ids(path.read_bytes().rsplit(b"\n", 2)[-2]) == ["id0"]


def test_reports_without_a_message_are_said_not_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "dead-letters.jsonl"
    dead_letters = DeadLetterFile(path)
    unbuilt = DeliveryReport(None, DeliveryStatus.REJECTED, "direct", reason="not an event")

    with caplog.at_level(logging.ERROR, logger="mixpanel_core.dead_letter"):
        dead_letters.write([unbuilt, *_reports(1)])

    assert _insert_ids(path.read_bytes()) == ["id0"]
    [line] = [r.getMessage() for r in caplog.records]
    assert "1 record(s) not kept in" in line
    assert "not an event" in line


def test_two_processes_writing_one_fifo_never_tear_each_others_lines(tmp_path: Path) -> None:
    # A write to a pipe larger than its atomic size (4 KiB) is split when the pipe is full:
    # two forked workers writing a batch of dead letters each to one FIFO, read by a slow
    # log shipper, interleaved mid-line.
    fifo = tmp_path / "dead-letters.fifo"
    os.mkfifo(fifo)
    read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keep_open = os.open(fifo, os.O_WRONLY)  # no end of file until both writers are done
    children = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                dead_letters = DeadLetterFile(fifo)
                dead_letters.write(_reports(100, size=2000))
                code = dead_letters.unwritten
            finally:
                os._exit(code)
        children.append(pid)
    os.close(keep_open)
    os.set_blocking(read_end, True)
    data = b""
    while chunk := os.read(read_end, 1000):  # a slow reader: the pipe stays full
        data += chunk
        time.sleep(0.0005)
    os.close(read_end)
    for pid in children:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

    lines = data.splitlines()
    assert len(lines) == 2 * 100
    assert all(orjson.loads(line)["record"]["properties"]["pad"] == "x" * 2000 for line in lines)


STDERR = """
import os, sys
sys.path.insert(0, {tests!r})
from test_dead_letter_file import _reports
from mixpanel_core.dead_letter import DeadLetterFile
sys.stderr.write("before\\n"); sys.stderr.flush()
DeadLetterFile("/dev/stderr").write(_reports(1))
sys.stderr.write("after, the application's own next line\\n"); sys.stderr.flush()
"""


def test_dev_stderr_redirected_to_a_file_keeps_the_dead_letter_in_place(tmp_path: Path) -> None:
    # Opened anew, /dev/stderr of `2> app.log` (not appended to) wrote at an offset of its
    # own, and the application's next line overwrote the dead letter.
    log = tmp_path / "app.log"
    script = STDERR.format(tests=str(Path(__file__).parent))
    with log.open("w") as stderr:
        done = subprocess.run(
            [sys.executable, "-c", script], check=False, stderr=stderr, timeout=60
        )

    assert done.returncode == 0
    first, letter, last = log.read_bytes().splitlines()
    assert (first, last) == (b"before", b"after, the application's own next line")
    assert _insert_ids(letter) == ["id0"]
