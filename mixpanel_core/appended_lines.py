"""Appending JSON lines to a file that others may append to as well: the dead-letter file of
``buffered_http`` (``dead_letter``) and the rejected file of the commands
(``commands.rejected``).

A file appended to this way only ever gains whole lines: writers of several processes never
interleave (an exclusive ``flock`` around each write), a line left cut short by someone else
(a process killed as it wrote) is ended before the first line written after it, and a write
cut short (a full disk) takes back its own part of a line. Cut short, that part stayed, and
the next line written was appended to it: one line holding parts of two records, which no
replay can read.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from mixpanel_core.process_fork import in_fork_children

STANDARD_STREAMS = {
    "/dev/stdout": 1,
    "/dev/stderr": 2,
    "/dev/fd/1": 1,
    "/dev/fd/2": 2,
    "/proc/self/fd/1": 1,
    "/proc/self/fd/2": 2,
}
"""Paths naming this process's own stdout or stderr: written through its descriptor. Opened
anew, ``/dev/stderr`` redirected with ``2> app.log`` writes at offset 0 of its own (the app's
next line overwrote the dead letter), and one that is a socket (systemd's journal) refuses."""


class CutShortError(OSError):
    """A write that failed part way: ``whole`` lines went in whole before it."""

    def __init__(self, cause: OSError, whole: int) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.whole = whole


def append_lines(
    path: Path,
    lines: list[bytes],
    *,
    new_line_first: bool = False,
    sync: bool = False,
    held: int | None = None,
) -> None:
    """Append ``lines`` (each ending in a line break) to ``path``; ``new_line_first``: after
    a line break, whatever the file ends with (a write was cut where it cannot be read back,
    as on a FIFO); ``sync``: then flush the file to disk (not a FIFO's or a device's, which
    have no disk to reach).

    Opened per write, write-only and in append mode: no handle outlives a fork (nor is one
    kept by a child forked in the middle of a write, see ``_opened``), and a FIFO
    or a write-only file work as well as a regular file. The write is made under an
    exclusive ``flock``: writers of several processes (forked workers) never interleave, also
    on a FIFO, where a write larger than the pipe's atomic size (4 KiB) would be split, and
    neither the check that the file ends a line nor the taking back of a write cut short is
    raced by another writer's append. A write cut short (disk full) raises ``CutShortError``
    with how many lines did go in whole. ``held``: a descriptor of ``path`` the caller keeps
    open (a FIFO's, see ``commands.rejected``), written through as a standard stream is.
    """
    data = b"".join(lines)
    stream = held if held is not None else STANDARD_STREAMS.get(str(path))
    if stream is not None:
        _write_all(stream, b"\n" + data if new_line_first else data, None)
        if sync:
            _sync(stream)
        return
    # Not blocking in open: a FIFO nobody reads would hold the sender for ever (ENXIO
    # instead); writes do block, as any log's do, so a slow reader loses nothing.
    with _opened(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK) as fd:
        os.set_blocking(fd, True)
        _OPEN.close_strays(fd)
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when closed, in every process (_opened)
        if new_line_first or not _ends_a_line(path):
            # A write cut short, or a process killed mid-write, left part of a line: start
            # one of our own, or that fragment would make the first line written here
            # unreadable too.
            data = b"\n" + data
        _write_all(fd, data, fd)
        if sync:
            _sync(fd)


class _OpenDescriptors:
    """The descriptors ``_opened`` holds open now, in this process, and the lock held while
    one is opened and entered, or closed and left out: a fork waits for it, so that the child
    knows every descriptor it inherited from here."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fds: dict[int, tuple[int, FileKey]] = {}
        """By descriptor: the thread that opened it, and its file. An entry may outlive its
        descriptor (an exception between the close and the entry's removal): a descriptor is
        only ever closed here after ``fstat`` says it is still that file."""

    def enter(self, fd: int) -> None:
        self.fds[fd] = (threading.get_ident(), _file_key(fd))

    def hold(self) -> None:
        """Before a fork: no descriptor is being opened or closed while it is made."""
        self.lock.acquire()

    def let_go(self) -> None:
        """After a fork, in the parent."""
        self.lock.release()

    def close_strays(self, fd: int) -> None:
        """Close the descriptors of ``fd``'s file that this thread opened here before and
        never closed: an exception (a Ctrl-C's, a SIGTERM handler's) that landed in
        ``_opened``'s last steps left one open, holding its ``flock``, and the next write of
        this process waited for that lock for ever (review R71 F1). (One open on an outer
        call this thread is inside of, interrupted by a signal handler that writes here too,
        is closed as well: that write then fails, rather than both waiting for ever.)"""
        thread, file = threading.get_ident(), _file_key(fd)
        with self.lock:
            for other, (opener, key) in list(self.fds.items()):
                if other != fd and opener == thread and key == file:
                    del self.fds[other]
                    if _is_file(other, file):
                        with contextlib.suppress(OSError):
                            os.close(other)

    def close_in_child(self) -> None:
        """In a forked child: close the descriptors the parent's threads had open (the
        child's copies only; the parent's stay open, and locked, until its write ends)."""
        for fd, (_, file) in self.fds.items():
            if _is_file(fd, file):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.fds.clear()
        # Held at the fork, by the forking thread or (uWSGI forks in C, running no ``before``
        # hook) by one the child does not have.
        self.lock = threading.Lock()


FileKey = tuple[int, int]
"""A file's device and inode."""


def _file_key(fd: int) -> FileKey:
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


def _is_file(fd: int, file: FileKey) -> bool:
    """Whether ``fd`` is open, on ``file``."""
    try:
        return _file_key(fd) == file
    except OSError:
        return False


_OPEN = _OpenDescriptors()
in_fork_children(_OPEN, _OpenDescriptors.close_in_child)  # os.fork() and uWSGI's workers
# Methods, not the lock's own: the child's lock is a new one, and the child may fork too.
os.register_at_fork(before=_OPEN.hold, after_in_parent=_OPEN.let_go)


@contextlib.contextmanager
def _opened(path: Path, flags: int) -> Iterator[int]:
    """``path`` opened with ``flags``, closed on leaving, and closed in a child forked while
    it is open. A ``flock`` belongs to the open file, not to the process: a child that kept
    the copy it inherits of a descriptor locked mid-write (its writing thread is not forked
    with it) held the lock for as long as it lived, and every later write of the parent's,
    and of the child's own, waited in ``flock`` for it (review R67 F1)."""
    with _OPEN.lock:
        fd = os.open(path, flags, 0o666)
        _OPEN.enter(fd)
    try:
        yield fd
    finally:
        with _OPEN.lock:
            # Closed first: interrupted after it, the entry is only stale (see ``fds``);
            # before it, the entry lets ``close_strays`` close what was left open.
            os.close(fd)
            _OPEN.fds.pop(fd, None)


def _write_all(fd: int, data: bytes, regular_fd: int | None) -> None:
    """Write ``data`` whole to ``fd``; cut short, take back the part of a line it wrote
    (``regular_fd``: the descriptor to do it through, that of a file opened here)."""
    before = _size(regular_fd)
    done = 0
    try:
        while done < len(data):
            done += os.write(fd, memoryview(data)[done:])
    except OSError as exc:
        whole_end = data.rfind(b"\n", 0, done) + 1
        if before is not None and _size(regular_fd) == before + done:
            # Only bytes of this write follow ``before`` (another writer of ours waits for the
            # lock; one that takes none changed the size, and then nothing is cut).
            # Left, if it cannot be cut: the next write starts a line after the fragment.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, before + whole_end)
        whole = data[:whole_end].count(b"\n") - (data[:1] == b"\n" and whole_end > 0)
        raise CutShortError(exc, whole) from exc


def _size(fd: int | None) -> int | None:
    """The size of the regular file open as ``fd`` (``None``: none, or not a regular file)."""
    if fd is None:
        return None
    status = os.fstat(fd)
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def _sync(fd: int) -> None:
    """Flush ``fd`` to disk, if it is a regular file: a FIFO, a terminal or ``/dev/null``
    refuse (EINVAL), and what was written to them has gone where it goes."""
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fsync(fd)


def _ends_a_line(path: Path) -> bool:
    """Whether ``path`` is missing, empty, unreadable, not a regular file, or ends a line."""
    with contextlib.ExitStack() as stack:
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return True  # a FIFO or a device: nothing to read back
            fd = stack.enter_context(_opened(path, os.O_RDONLY))
        except OSError:  # missing (the write creates it), or write-only: nothing to mend
            return True
        size = os.fstat(fd).st_size
        return size == 0 or os.pread(fd, 1, size - 1) == b"\n"
