"""The owner's ``close()`` run on a thread, letting a worker go on once that close has looked
at the open producers twice (the worker counted open) or has returned (not counted).

Used by the tests that force a worker's close to race the owner's: whichever way the product
goes, the test's own waits decide nothing."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest

from mixpanel_core.client import Mixpanel
from mixpanel_core.multiprocess import QueueChannel


def close_the_owner_letting_the_worker_go(
    client: Mixpanel, channel: QueueChannel, go_on: Any, monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    """``client.close()``; ``go_on`` is set once it looked again or returned. Returns what
    the close returned."""
    looked = itertools.count()
    looked_again = threading.Event()
    count_open = channel.producers_open

    def producers_open_watched() -> int:
        still_open: int = count_open()
        if next(looked) > 0:
            looked_again.set()
        return still_open

    monkeypatch.setattr(channel, "producers_open", producers_open_watched)
    left: list[Any] = []
    closer = threading.Thread(target=lambda: left.extend(client.close(timeout=60)))
    closer.start()
    waited_until = time.monotonic() + 30
    while not looked_again.is_set() and closer.is_alive():
        assert time.monotonic() < waited_until, "the owner's close never looked again"
        time.sleep(0.01)
    go_on.set()
    closer.join(90)
    assert not closer.is_alive(), "the owner's close did not return"
    return left
