"""``Mixpanel.close(timeout)`` and ``flush(timeout)`` end within ``timeout``, however many
transports there are.

Each transport was given the whole ``timeout`` in turn: with three ``buffered_http`` transports
whose Mixpanel cannot be reached, ``close(timeout=2)`` took 6 s, and a shutdown sized on it (a
container's grace period) was killed part way, losing what was still queued (review U2). Each
now counts the bound from the start of the call, as the exit's closes count theirs from the
start of exit, and has at least ``CLOSE_FLOOR`` (1 s) as they do (review R12: a transport left
no time gave up on a request Mixpanel applied); what one could not deliver is given up on
(returned, reported FAILED, dead-lettered), not lost.
"""

from __future__ import annotations

import socket
import time

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.process_exit import CLOSE_FLOOR

TRANSPORTS = ("first", "second")
BOUND = 3.0


def _unreachable() -> str:
    """A loopback address nothing listens on: every connection is refused at once."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{unused.getsockname()[1]}"


def _client() -> Mixpanel:
    options = {"type": "buffered_http", "retry_budget": 60.0, "exit_timeout": 0.0}
    config = config_from_mapping(
        {
            "mixpanel": {"token": "token", "api_host": _unreachable()},
            "plugins": {"enabled": ["mixpanel_limits", "router"]},
            "transports": {name: options for name in TRANSPORTS},
            "routes": [{"transport": list(TRANSPORTS)}],
        }
    )
    return Mixpanel("token", config=config)


def test_flush_and_close_end_within_their_timeout_whatever_the_number_of_transports() -> None:
    client = _client()
    client.track("u", "Signed up")

    started = time.monotonic()
    held = client.flush(BOUND)
    flushed_in = time.monotonic() - started
    started = time.monotonic()
    given_up = client.close(BOUND)
    closed_in = time.monotonic() - started

    # Each held its copy the whole time: nothing was delivered, and nothing is lost.
    assert len(held) == len(TRANSPORTS)
    assert len(given_up) == len(TRANSPORTS)
    # Each took the whole bound, in turn: twice the bound. Now the first takes the bound and
    # the second its floor; a close also waits for its thread's end and gives up on what is
    # left: a margin for that, well short of another second.
    most = BOUND + CLOSE_FLOOR + 0.8
    assert flushed_in < most, flushed_in
    assert closed_in < most, closed_in
    assert flushed_in > BOUND + CLOSE_FLOOR * 0.9, flushed_in  # the second had its floor
