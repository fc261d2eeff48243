"""``in_fork_children``: resets run in forked children, and registering leaks nothing."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

from mixpanel_core import Mixpanel
from mixpanel_core.process_fork import in_fork_children
from mixpanel_core.testing import MemoryTransport


class _Owner:
    def __init__(self) -> None:
        self.state = "parent"


def _exit_code_in_child(check: Callable[[], bool]) -> int:
    """Fork; the child exits 0 if ``check()`` holds there, else 1."""
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, skip everything else
        os._exit(0 if check() else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_each_live_owner_is_reset_in_the_child_in_order_even_after_one_fails() -> None:
    order: list[str] = []
    first, broken, last = _Owner(), _Owner(), _Owner()

    def reset(owner: _Owner) -> None:
        owner.state = "child"
        order.append("first" if owner is first else "last")

    def fail(owner: _Owner) -> None:
        raise RuntimeError("cannot reset")

    in_fork_children(first, reset)
    in_fork_children(broken, fail)
    in_fork_children(last, reset)
    assert _exit_code_in_child(lambda: order == ["first", "last"] and last.state == "child") == 0
    assert (first.state, last.state, order) == ("parent", "parent", [])  # parent untouched


def _build_clients(count: int) -> None:
    for _ in range(count):
        client = Mixpanel("token", MemoryTransport(discard=True))
        client.track("u", "e")
        client.close()


def test_clients_built_and_dropped_leave_nothing_behind() -> None:
    """A client per web request, as official-SDK users often write: each registers a reset
    (its insert-id generator's), and it must go with the client. One ``os.register_at_fork``
    hook per client kept a function and its cell forever, and a call at every later fork."""
    _build_clients(50)  # first-use caches, before counting
    gc.collect()
    before = len(gc.get_objects())
    _build_clients(2000)
    gc.collect()
    grown = len(gc.get_objects()) - before
    assert grown < 500, f"{grown} objects kept by 2,000 dropped clients"
