"""``buffered_http`` called again by a thread that is already inside it: refused at once.

A signal handler runs on the main thread between two bytecodes, also in the middle of that
thread's ``send()`` (holding the queue's lock) or ``flush()`` (holding the sender's state). A
``close()`` or ``flush()`` made there waited for that very lock forever: the process hung
instead of shutting down. Holding the lock on the test's own thread is exactly what such a
handler finds; the refusal must come at once, change nothing, and say what to do instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import TransportError

from .test_buffered_http import make_event, transport_for

pytestmark = pytest.mark.integration

CALLS_END_WITHIN = 20.0
"""Seconds the refused calls get: they take microseconds; before the fix they never ended."""


def _outcomes_while_held(
    lock: object, calls: dict[str, Callable[[], object]]
) -> dict[str, BaseException | None]:
    """Make ``calls`` on a thread that holds ``lock``, as an interrupted ``send()`` does."""
    outcomes: dict[str, BaseException | None] = {}

    def inside() -> None:
        with lock:  # type: ignore[attr-defined]
            for verb, call in calls.items():
                try:
                    call()
                    outcomes[verb] = None
                except TransportError as error:
                    outcomes[verb] = error

    # A daemon: before the fix it waits for itself forever, and must not hold the test run.
    thread = threading.Thread(target=inside, daemon=True)
    thread.start()
    thread.join(CALLS_END_WITHIN)
    assert not thread.is_alive(), f"waited for itself; ended: {sorted(outcomes)}"
    return outcomes


@pytest.mark.parametrize("inside", ["queue", "state"])
def test_close_and_flush_from_inside_the_transport_are_refused_and_change_nothing(
    mixpanel_emulator: Emulator, inside: str
) -> None:
    """``queue``: a handler that interrupted ``send()``; ``state``: one that interrupted
    ``flush()`` (or a drop under ``drop_oldest``) between its waits."""
    transport = transport_for(mixpanel_emulator)
    transport.send(make_event("reentry", 0))
    sender = transport.sender
    lock = sender._queue._lock if inside == "queue" else sender._loop.state
    outcomes = _outcomes_while_held(
        lock, {"flush": lambda: transport.flush(5), "close": lambda: transport.close(5)}
    )
    for verb in ("flush", "close"):
        error = outcomes[verb]
        assert isinstance(error, TransportError), f"{verb}() was not refused"
        message = str(error)
        assert f"{verb}() was called while this thread is inside the transport" in message
        assert "raise SystemExit" in message
        assert "sys.exit()" in message
    # Refused before anything changed: the transport still takes and delivers.
    transport.send(make_event("reentry", 1))
    assert transport.close(30) == []
    delivered = sorted(mixpanel_emulator.client.insert_ids("track"))
    assert delivered == ["reentry-000000000000", "reentry-000000000001"]


def test_a_send_from_inside_the_queue_is_refused_not_let_in(mixpanel_emulator: Emulator) -> None:
    """A handler that sends while its thread is in the middle of a ``send()``: the queue is
    never changed under that ``send()`` (nor waited for), the message is refused."""
    transport = transport_for(mixpanel_emulator)
    transport.send(make_event("reentry-send", 0))
    outcomes = _outcomes_while_held(
        transport.sender._queue._lock,
        {"send": lambda: transport.send(make_event("reentry-send", 1))},
    )
    error = outcomes["send"]
    assert isinstance(error, TransportError)
    assert "inside the queue" in str(error)
    assert transport.close(30) == []
    assert mixpanel_emulator.client.insert_ids("track") == ["reentry-send-000000000000"]
