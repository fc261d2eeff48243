"""A child forked while a dead letter is being written must not keep the file's lock.

Review R67 F1: the ``flock`` taken around each write belongs to the open file, and a child
forked mid-write inherited the descriptor; the thread that would close it does not exist in
the child, so the lock was held for the child's whole life, and every later write of the
parent (its sender thread, and with it delivery) waited in ``flock``. A pre-fork server forks
at any time. Here the write is held open deterministically: a FIFO whose reader is not
reading yet, written more than the pipe holds.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from mixpanel_core.appended_lines import append_lines

LINE = b"x" * 1023 + b"\n"


def _locked(path: Path) -> bool:
    """Whether some open file of ``path`` holds its exclusive ``flock`` now."""
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the lock, if it was this one's
    return False


def _drain(fd: int, until: threading.Thread, timeout: float) -> bytes:
    """Read the FIFO's non-blocking ``fd`` until ``until`` has ended (and then what it left
    in the pipe) or ``timeout`` has passed."""
    read = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = not until.is_alive()
        try:
            while chunk := os.read(fd, 1 << 16):
                read += chunk
        except BlockingIOError:
            pass
        if ended:
            break
        time.sleep(0.005)
    return bytes(read)


def test_a_child_forked_in_the_middle_of_a_write_does_not_hold_the_files_lock(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "dead-letters.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    first = threading.Thread(target=append_lines, args=(fifo, [LINE] * 1024))  # 1 MiB
    first.start()
    deadline = time.monotonic() + 10
    while not _locked(fifo):  # the write is under way, its lock taken
        assert first.is_alive()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    child = os.fork()
    if child == 0:  # a pre-fork worker: lives on and writes nothing
        time.sleep(60)
        os._exit(0)
    try:
        got = _drain(reader, first, timeout=10)
        assert not first.is_alive(), "the first write did not end once the FIFO was read"
        second = threading.Thread(target=append_lines, args=(fifo, [b"after the fork\n"]))
        second.start()
        got += _drain(reader, second, timeout=5)
        # Before the fix: blocked in flock() until the child exits (60 s).
        assert not second.is_alive(), "the parent's next write waits for the child's lock"
        assert got == LINE * 1024 + b"after the fork\n"
        assert os.waitpid(child, os.WNOHANG) == (0, 0), "the child was to live on meanwhile"
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(reader)


def test_a_child_forked_in_the_middle_of_a_write_writes_its_own_lines_after_it(
    tmp_path: Path,
) -> None:
    """The child's own first write waited for the lock its own copy of the descriptor held:
    for ever, and its exit's close with it (R67 F1). Its line now follows the parent's."""
    fifo = tmp_path / "dead-letters.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    first = threading.Thread(target=append_lines, args=(fifo, [LINE] * 1024))
    first.start()
    deadline = time.monotonic() + 10
    while not _locked(fifo):
        assert first.is_alive()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    child = os.fork()
    if child == 0:
        status = 1
        try:
            append_lines(fifo, [b"from the child\n"])
            status = 0
        finally:
            os._exit(status)
    try:
        exited = threading.Thread(target=os.waitpid, args=(child, 0))
        exited.start()
        got = _drain(reader, first, timeout=10)
        got += _drain(reader, exited, timeout=10)
        assert not exited.is_alive(), "the child's write waits for its own inherited lock"
        assert got == LINE * 1024 + b"from the child\n"
    finally:
        if exited.is_alive():
            os.kill(child, signal.SIGKILL)
            exited.join()
        os.close(reader)


def test_a_write_interrupted_as_it_closes_its_file_does_not_lock_the_next_one_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review R71 F1: a Ctrl-C (or a SIGTERM handler's SystemExit) landing in the last steps
    of a write, before its descriptor was closed, left it open holding the file's ``flock``;
    the next write of the same process (``send``'s rejected file, closed in its ``finally``)
    waited for that lock for ever, and the command hung instead of exiting 130."""
    path = tmp_path / "rejected.jsonl"
    real_close = os.close

    def interrupted_close(fd: int) -> None:
        writing = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_WRONLY
        if writing and os.readlink(f"/proc/self/fd/{fd}") == str(path):
            monkeypatch.setattr(os, "close", real_close)
            raise KeyboardInterrupt  # landed just before the close
        real_close(fd)

    interrupted: list[bool] = []

    def interrupted_then_again() -> None:
        # One thread, as in ``send``: the signal's exception lands in the main thread, whose
        # ``finally`` then writes again.
        try:
            append_lines(path, [b"first\n"])
        except KeyboardInterrupt:
            interrupted.append(True)
        append_lines(path, [b"second\n"])

    monkeypatch.setattr(os, "close", interrupted_close)
    writer = threading.Thread(target=interrupted_then_again, daemon=True)
    writer.start()
    writer.join(5)
    assert interrupted == [True]
    assert not writer.is_alive(), "the next write waits for the lock left behind"
    assert path.read_bytes() == b"first\nsecond\n"
