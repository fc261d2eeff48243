"""Exit hooks take no slot of Python's ``atexit`` table each: one cancelled (a client closed)
left its slot for the life of the process (``atexit.unregister`` leaves it empty, and every
later register and unregister looks through them all), so an application building a client
per web request slowed down without end (review L1: 186 µs a client at 250,000 of them).
The order of the exit's clean-ups among the application's own handlers is unchanged.

In a fresh interpreter that really exits: the order is atexit's."""

from __future__ import annotations

from ..subprocesses import run_python

PROGRAM = """
import atexit
from mixpanel_core.process_exit import at_exit

def said(text):
    return lambda: print(text, flush=True)

slots = atexit._ncallbacks()
for _ in range(1000):
    at_exit(said("cancelled"))()  # registered, then cancelled: a client built and closed
# One at most: none when the last slot made is still atexit's last.
print("at most one slot taken:", atexit._ncallbacks() - slots <= 1, flush=True)

at_exit(said("hook 1"))
at_exit(said("hook 2"))
atexit.register(said("the application's handler"))
at_exit(said("hook 3"))
"""


def test_a_thousand_hooks_cancelled_take_one_slot_and_the_order_is_atexits() -> None:
    finished = run_python(PROGRAM)

    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == [
        "at most one slot taken: True",
        "hook 3",
        "the application's handler",
        "hook 2",
        "hook 1",
    ]


RAISING = """
from mixpanel_core.process_exit import at_exit

def said(text):
    return lambda: print(text, flush=True)

def interrupted():
    raise KeyboardInterrupt  # a Ctrl-C at exit, in one hook

at_exit(said("hook 1"))
at_exit(interrupted)
at_exit(said("hook 3"))
"""


def test_a_hook_interrupted_at_exit_spares_the_others_of_its_slot() -> None:
    finished = run_python(RAISING)

    assert finished.stdout.splitlines() == ["hook 3", "hook 1"]
    assert "KeyboardInterrupt" in finished.stderr
