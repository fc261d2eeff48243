"""``Intake``: the sender's reading thread, from the frame pipe to a bounded backlog.

The sender's main thread may wait on its inner transport for long (Mixpanel slow or down).
Meanwhile this thread keeps the pipe read, so producers are not held up, until the backlog
holds ``max_queue_messages / batch_size`` frames. Then it stops reading (``block`` and
``drop_newest``: the pipe fills and producers meet the policy), or drops the backlog's
oldest frame to make room (``drop_oldest``).

It also throws away the unfinished frame of a producer that died while writing it, and says
so through ``on_cut``: the rest of that frame will never come.
"""

from __future__ import annotations

import collections
import fcntl
import os
import queue
import select
import struct
import termios
import threading
import time
from collections.abc import Callable
from typing import Any

from mixpanel_core.multiprocess.channel import QueueChannel, process_running
from mixpanel_core.multiprocess.pipe import FrameAssembler

Item = bytes | tuple[Any, ...]
"""A whole frame, or a control item from the owner."""

READ_SIZE = 1 << 18
POLL_MS = 50
"""How long the thread waits for the pipe before it looks at its stop flag again."""


def unread_bytes(fd: int) -> int:
    """How many bytes the pipe ``fd`` reads from holds now."""
    answer = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    count: int = struct.unpack("i", answer)[0]
    return count


class Intake:
    """Reads the pipe on a thread; the sender's main thread takes items with ``get``."""

    def __init__(
        self,
        channel: QueueChannel,
        on_drop: Callable[[bytes], None],
        on_cut: Callable[[int, int], None],
    ) -> None:
        options = channel.options
        self._fd = channel.pipe.reader.fd
        self._bound = options.queue_batches
        self._drop_oldest = options.when_full == "drop_oldest"
        self._interval = options.check_interval
        self._on_drop = on_drop
        self._on_cut = on_cut
        self._assembler = FrameAssembler()
        self._items: collections.deque[Item] = collections.deque()
        self._frames = 0
        self._read = 0
        """Bytes read from the pipe so far."""
        self._dead: dict[int, int] = {}
        """Producers found gone with a frame unfinished, and the count of bytes read (see
        ``_read``) past which everything they wrote has been read (``_note_the_dead``)."""
        self._ready = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="mixpanel-sender-intake", daemon=True
        )
        self._thread.start()

    def get(self, timeout: float) -> Item:
        """The next item, in pipe order; ``queue.Empty`` after ``timeout`` seconds without."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while not self._items:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise queue.Empty
                self._ready.wait(left)
            item = self._items.popleft()
            if isinstance(item, bytes):
                self._frames -= 1
                self._ready.notify_all()  # room again: the reading thread may go on
            return item

    def get_nowait(self) -> Item:
        return self.get(0.0)

    def stop(self) -> None:
        """Stop reading, and discard the frames producers left unfinished (``on_cut``)."""
        self._stopped = True
        with self._ready:
            self._ready.notify_all()
        self._thread.join(POLL_MS / 1000 * 4)
        if not self._thread.is_alive():
            self._assembler.discard()
            self._report_cuts()

    # -- the reading thread ------------------------------------------------------------------

    def _run(self) -> None:
        poll = select.poll()
        poll.register(self._fd, select.POLLIN)
        next_check = time.monotonic() + self._interval
        while not self._stopped:
            if not self._wait_for_room():
                return
            if poll.poll(POLL_MS):
                try:
                    data = os.read(self._fd, READ_SIZE)
                except BlockingIOError:  # another reader (a test) took it first
                    data = b""
                self._read += len(data)
                items = self._assembler.feed(data) if data else []
                if items:
                    self._add(items)
            now = time.monotonic()
            if now >= next_check:
                next_check = now + self._interval
                self._note_the_dead()
            if self._dead:
                self._discard_what_the_dead_left()
            self._report_cuts()

    def _note_the_dead(self) -> None:
        """Note each producer with an unfinished frame that is gone, with how much of the pipe
        must still be read before that frame is known to be cut short.

        A producer that wrote its frame whole and then exited (or was killed) may have left
        the frame's last chunks in the pipe, unread: behind other producers' chunks, or
        because this thread stopped reading while the backlog was full. Those are all in the
        pipe by now, since the producer is gone: its frame is judged once everything the pipe
        holds now has been read, and delivered if its last chunk was there.
        """
        for pid in self._assembler.pending_pids():
            if pid not in self._dead and not process_running(pid):
                self._dead[pid] = self._read + unread_bytes(self._fd)

    def _discard_what_the_dead_left(self) -> None:
        pending = self._assembler.pending_pids()
        read_past = [pid for pid, until in self._dead.items() if self._read >= until]
        cut = {pid for pid in read_past if pid in pending}
        for pid in read_past:
            del self._dead[pid]
        # Not discarded if the pid runs again (reused by a new process): its chunks may be
        # that process's frame, which it is still writing.
        cut = {pid for pid in cut if not process_running(pid)}
        if cut:
            self._assembler.discard(cut)

    def _wait_for_room(self) -> bool:
        """Wait while the backlog is full (unless dropping the oldest); False once stopped."""
        with self._ready:
            while self._frames >= self._bound and not self._drop_oldest:
                if self._stopped:
                    return False
                self._ready.wait(POLL_MS / 1000)
        return not self._stopped

    def _add(self, items: list[Item]) -> None:
        dropped: list[bytes] = []
        with self._ready:
            for item in items:
                if isinstance(item, bytes):
                    if self._drop_oldest and self._frames >= self._bound:
                        dropped.append(self._pop_oldest_frame())
                    self._frames += 1
                self._items.append(item)
            self._ready.notify_all()
        for frame in dropped:
            self._on_drop(frame)

    def _pop_oldest_frame(self) -> bytes:
        # Control items stay: the owner's stop and flush requests must not be lost.
        for index, item in enumerate(self._items):
            if isinstance(item, bytes):
                del self._items[index]
                self._frames -= 1
                return item
        raise AssertionError("the backlog counted a frame it does not hold")

    def _report_cuts(self) -> None:
        cuts = self._assembler.cuts
        while cuts:
            pid, records = cuts.pop(0)
            self._on_cut(pid, records)
