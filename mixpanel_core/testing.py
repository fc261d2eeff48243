"""Helpers for testing code that uses mixpanel-core: an in-memory transport and a client on it."""

from __future__ import annotations

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config
from transports.memory import MemoryTransport


def memory_client(
    token: str = "test-token", config: Config | None = None
) -> tuple[Mixpanel, MemoryTransport]:
    """A client whose every message lands in the returned ``MemoryTransport``."""
    transport = MemoryTransport()
    return Mixpanel(token, transport, config=config), transport


__all__ = ["MemoryTransport", "memory_client"]
