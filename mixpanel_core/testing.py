"""Helpers for testing code that uses mixpanel-core: an in-memory transport and a client on it,
and a bounded wait on a ``multiprocessing_queue`` sender."""

from __future__ import annotations

import time

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config
from mixpanel_core.multiprocess import QueueChannel
from transports.memory import MemoryTransport


def memory_client(
    token: str = "test-token", config: Config | None = None
) -> tuple[Mixpanel, MemoryTransport]:
    """A client whose every message lands in the returned ``MemoryTransport``."""
    transport = MemoryTransport()
    return Mixpanel(token, transport, config=config), transport


def wait_until_sender_took(channel: QueueChannel, count: int, timeout: float = 20.0) -> None:
    """Wait until the sender of ``channel`` has taken ``count`` records off its queue (and
    every record written to it); ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while channel.never_taken() or channel.taken.value < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sender took {channel.taken.value} of {count} records")
        time.sleep(0.01)


__all__ = ["MemoryTransport", "memory_client", "wait_until_sender_took"]
