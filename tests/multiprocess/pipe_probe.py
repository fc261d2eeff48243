"""Watching the channel's pipe from a test: stopping its reader (the sender), how much is
unread, and waiting until it is full.

A module of its own, importable by name like ``mp_workers``, for the tests that stop the sender
(SIGSTOP) and need a writer part-way through a frame larger than the pipe.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from typing import Any

from mixpanel_core.multiprocess.intake import unread_bytes

__all__ = ["paused_sender", "pipe_capacity", "unread_bytes", "wait_until_the_pipe_is_full"]


def paused_sender(transport: Any) -> int:
    """Stop the sender process (nothing reads the pipe); returns its pid."""
    channel = transport.channel
    deadline = time.monotonic() + 30
    while channel.sender_pid.value == 0:
        assert time.monotonic() < deadline, "the sender never started"
        time.sleep(0.01)
    pid: int = transport.supervisor.process.pid
    os.kill(pid, signal.SIGSTOP)
    return pid


def pipe_capacity(channel: Any) -> int:
    return int(fcntl.fcntl(channel.pipe.reader.fd, fcntl.F_GETPIPE_SZ))


def wait_until_the_pipe_is_full(channel: Any, writer: Any) -> None:
    """Until the pipe is (nearly) full while ``writer``, a process, still runs (bounded)."""
    fd = channel.pipe.reader.fd
    capacity = pipe_capacity(channel)
    deadline = time.monotonic() + 60
    while unread_bytes(fd) < capacity - 8192:
        assert writer.is_alive(), f"the writer exited ({writer.exitcode})"
        assert time.monotonic() < deadline, f"the pipe holds {unread_bytes(fd)} of {capacity}"
        time.sleep(0.02)
