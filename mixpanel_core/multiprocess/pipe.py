"""The frame pipe: frames cross from any producer to the sender as atomic chunks on one pipe.

Why chunks: the kernel writes at most ``PIPE_BUF`` bytes to a pipe in one piece, never
interleaved with another writer's bytes. Every chunk is one such write (header and payload
in one ``os.writev``), so the pipe only ever holds whole chunks, whatever happens to a
writer, and producers share it without any write lock. A producer killed in the middle of a
frame leaves some of that frame's chunks behind and nothing else: the sender's
``FrameAssembler`` reassembles frames per producer, and the sender throws an unfinished one
away once its producer is gone and all it wrote has been read (see ``intake``). Nothing a
dead producer held can stop anyone else.

The write end is non-blocking: a chunk is either written whole or refused (``EAGAIN``), so a
producer can wait for room with ``poll`` and give up at its deadline, or when the sender is
gone, without a thread of its own.

A chunk is ``HEADER`` (producer pid, producer stream, flags, the frame's record count, the
payload length) and then the payload: a slice of a frame, or one whole pickled control item.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import itertools
import math
import os
import pickle
import select
import struct
import time
import weakref
from collections.abc import Callable
from multiprocessing import reduction
from typing import Any

HEADER = struct.Struct("<IHBIH")
"""pid, stream (one per producer object in its process), flags, records, payload length."""
CHUNK = select.PIPE_BUF
"""The largest write the kernel keeps in one piece (4096 bytes on Linux)."""
PAYLOAD = CHUNK - HEADER.size
START, END, CONTROL = 1, 2, 4
"""Flags: the frame's first chunk, its last, a control item (always one whole chunk)."""
PIPE_SIZE = 1 << 20
"""Asked of the kernel for the pipe (it may give less): room for bursts while the sender's
reading thread is busy, so producers rarely wait on the pipe itself."""

_streams = itertools.count(1)


class InheritableFd:
    """A file descriptor that reaches child processes of any start method.

    ``fork`` children inherit it as is; pickled as a ``Process`` argument (``spawn``,
    ``forkserver``), it is duplicated into the child the way ``multiprocessing`` passes its
    own pipes (``multiprocessing.reduction.DupFd``).
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        # Closed with its last holder in this process (a channel dropped in a long-lived
        # process must not leak descriptors); left to the system at exit.
        weakref.finalize(self, os.close, fd).atexit = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_fd, (reduction.DupFd(self.fd),))


def _rebuild_fd(dup: Any) -> InheritableFd:
    return InheritableFd(dup.detach())


class FramePipe:
    """The pipe every producer writes chunks to and the sender reads."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        # Both flags live on the open pipe, so every process holding an end shares them.
        os.set_blocking(write_fd, False)
        os.set_blocking(read_fd, False)
        # Beyond the system's limit (or not on Linux) the default size works, only slower.
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self.reader = InheritableFd(read_fd)
        self.writer = InheritableFd(write_fd)


class Written(enum.Enum):
    """How much of a frame ``ChunkWriter.write`` got into the pipe."""

    ALL = "all"
    NONE = "none"
    PART = "part"
    """Cut short at the deadline (or the sender died): the sender discards the part."""


class Progress:
    """How far one frame's write got, for a write a signal's exception interrupts.

    ``counted``: its records were counted queued. ``last_chunk_tried``: its last chunk was
    being handed to the kernel, so the frame may be whole in the pipe; the sender then
    delivers it, or counts it cut short. (The flag is set just before that system call:
    an exception raised just after it cannot be told from one raised just before.)
    """

    __slots__ = ("counted", "last_chunk_tried")

    def __init__(self) -> None:
        self.counted = False
        self.last_chunk_tried = False


class ChunkWriter:
    """Writes one producer's frames and control items, one chunk per system call.

    Not thread-safe: its producer writes one frame at a time, which also keeps the frames of
    a thread in order.
    """

    def __init__(self, pipe: FramePipe, check_interval: float) -> None:
        self._fd = pipe.writer.fd
        self._pid = os.getpid()
        self._stream = next(_streams) & 0xFFFF
        self._interval = check_interval
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLOUT)

    def write(
        self,
        frame: bytes,
        records: int,
        first_deadline: float,
        deadline: float,
        alive: Callable[[], bool],
        progress: Progress | None = None,
    ) -> Written:
        """Write ``frame`` as chunks: the first by ``first_deadline``, the rest by ``deadline``
        (``time.monotonic()``); waiting stops early once ``alive()`` says the sender is gone.
        ``progress`` is told when the last chunk is tried."""
        view = memoryview(frame)
        total = len(frame)
        offset = 0
        flags = START
        until = first_deadline
        while True:
            end = min(offset + PAYLOAD, total)
            if end == total:
                flags |= END
            header = HEADER.pack(self._pid, self._stream, flags, records, end - offset)
            last = progress if flags & END else None
            if not self._write_chunk(header, view[offset:end], until, alive, last):
                return Written.NONE if offset == 0 else Written.PART
            if end == total:
                return Written.ALL
            offset = end
            flags = 0
            until = deadline

    def write_control(self, item: object, deadline: float, alive: Callable[[], bool]) -> bool:
        """Write one control item (a small tuple) as a chunk of its own."""
        payload = pickle.dumps(item)
        header = HEADER.pack(self._pid, self._stream, START | END | CONTROL, 0, len(payload))
        return self._write_chunk(header, payload, deadline, alive)

    def _write_chunk(
        self,
        header: bytes,
        body: bytes | memoryview,
        deadline: float,
        alive: Callable[[], bool],
        last: Progress | None = None,
    ) -> bool:
        next_check = time.monotonic() + self._interval
        while True:
            try:
                if last is not None:
                    last.last_chunk_tried = True
                os.writev(self._fd, (header, body))  # <= PIPE_BUF: whole, or EAGAIN
                return True
            except BlockingIOError:
                if last is not None:
                    last.last_chunk_tried = False
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= next_check:
                # Checked even when poll keeps saying "writable" and writes keep failing
                # (other producers taking the room first).
                if not alive():
                    return False
                next_check = now + self._interval
            wait = min(deadline, next_check) - now
            self._poll.poll(max(math.ceil(wait * 1000), 1))


Cut = tuple[int, int]
"""A frame thrown away unfinished: its producer's pid and its number of records."""


class _Partial:
    __slots__ = ("parts", "records")

    def __init__(self, records: int, first: bytes) -> None:
        self.records = records
        self.parts = [first]


class FrameAssembler:
    """Turns the pipe's bytes back into items: frames (``bytes``) and control tuples.

    Chunks of different producers interleave; each producer's are in order, so frames are
    reassembled per (pid, stream). A frame that never gets its last chunk is discarded and
    listed in ``cuts``: when its producer starts another (it gave up on it at a deadline),
    when its producer is found dead, or when the sender stops.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._partial: dict[tuple[int, int], _Partial] = {}
        self.cuts: list[Cut] = []
        """Frames discarded since the caller last emptied this list."""

    def feed(self, data: bytes) -> list[bytes | tuple[Any, ...]]:
        """The items completed by ``data`` (which may end in the middle of a chunk)."""
        buffer = self._buffer
        buffer += data
        items: list[bytes | tuple[Any, ...]] = []
        size = len(buffer)
        pos = 0
        head = HEADER.size
        while size - pos >= head:
            pid, stream, flags, records, length = HEADER.unpack_from(buffer, pos)
            end = pos + head + length
            if end > size:
                break
            body = bytes(buffer[pos + head : end])
            pos = end
            if flags & CONTROL:
                items.append(pickle.loads(body))
                continue
            key = (pid, stream)
            if flags & START:
                if key in self._partial:
                    self.cuts.append((pid, self._partial.pop(key).records))
                if flags & END:
                    items.append(body)  # a frame of one chunk
                else:
                    self._partial[key] = _Partial(records, body)
                continue
            partial = self._partial.get(key)
            if partial is None:
                continue  # the rest of a frame already discarded
            partial.parts.append(body)
            if flags & END:
                del self._partial[key]
                items.append(b"".join(partial.parts))
        del buffer[:pos]
        return items

    def pending_pids(self) -> set[int]:
        """The producers with an unfinished frame."""
        return {pid for pid, _ in self._partial}

    def discard(self, pids: set[int] | None = None) -> None:
        """Discard the unfinished frames of ``pids`` (of every producer: None)."""
        for key in [k for k in self._partial if pids is None or k[0] in pids]:
            self.cuts.append((key[0], self._partial.pop(key).records))
