"""``process_exit``: a clean-up whose owner another feeds runs after that other's, where its own
would have run; every other clean-up keeps its place, and each runs once, on its own.

Checked in a fresh interpreter that really exits, as the order is atexit's.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from mixpanel_core.process_exit import _registry, at_exit, exit_before, owned

from ..subprocesses import run_python

PROGRAM = """
    import sys, time
    from mixpanel_core.process_exit import at_exit, exit_before, exit_time_left, owned

    class Transport:
        def __init__(self, name):
            self.name = name

    def says(text):
        return lambda: print(text, flush=True)

    def raises():
        print("feeder raises", flush=True)
        raise RuntimeError("feeder broke")

    case = sys.argv[1]
    feeder, other, fed = Transport("feeder"), Transport("other"), Transport("fed")
    if case == "order":
        at_exit(owned(feeder, says("feeder")))
        at_exit(says("unrelated, registered between"))
        at_exit(owned(other, says("other")))
        at_exit(owned(fed, says("fed")))  # registered last: would run first
        exit_before(feeder, fed)
    elif case == "raise":
        at_exit(owned(feeder, raises))
        at_exit(owned(fed, says("fed")))
        exit_before(feeder, fed)
    elif case in ("KeyboardInterrupt", "SystemExit"):
        def interrupted():
            print("feeder interrupted", flush=True)
            raise {"KeyboardInterrupt": KeyboardInterrupt, "SystemExit": SystemExit}[case]()
        at_exit(owned(feeder, interrupted))
        at_exit(owned(fed, says("fed")))
        exit_before(feeder, fed)
    elif case == "cancel":
        cancels = []
        at_exit(owned(feeder, lambda: (print("feeder cancels fed", flush=True), cancels[0]())))
        cancels.append(at_exit(owned(fed, says("fed"))))
        exit_before(feeder, fed)
    elif case == "loop":
        at_exit(owned(feeder, says("feeder")))
        at_exit(owned(fed, says("fed")))
        exit_before(feeder, fed)
        exit_before(fed, feeder)
    elif case == "budget":
        left = lambda text: lambda: print(text, round(exit_time_left(1.0), 1), flush=True)
        at_exit(left("unrelated, after both:"))
        at_exit(owned(feeder, lambda: time.sleep(0.5)))
        at_exit(owned(fed, left("fed:")))
        exit_before(feeder, fed)
    print("exiting", flush=True)
"""


def lines(case: str) -> list[str]:
    finished = run_python(PROGRAM, case)
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.splitlines()


def test_a_feeder_s_clean_up_runs_where_the_fed_one_s_would_have() -> None:
    assert lines("order") == ["exiting", "feeder", "fed", "other", "unrelated, registered between"]


def test_a_feeder_s_clean_up_that_raises_is_logged_and_the_fed_one_still_runs() -> None:
    finished = run_python(PROGRAM, "raise")
    assert finished.returncode == 0
    assert finished.stdout.splitlines() == ["exiting", "feeder raises", "fed"]
    assert "a clean-up at exit failed" in finished.stderr
    assert "RuntimeError: feeder broke" in finished.stderr


@pytest.mark.parametrize("interruption", ["KeyboardInterrupt", "SystemExit"])
def test_a_feeder_s_clean_up_interrupted_does_not_cost_the_fed_one_its_run(
    interruption: str,
) -> None:
    """Ctrl-C during a multiprocessing_queue's exit close: atexit would report it and run the
    next clean-up, here the fallback's, which still delivers what it holds."""
    finished = run_python(PROGRAM, interruption)
    assert finished.stdout.splitlines() == ["exiting", "feeder interrupted", "fed"]
    assert "a clean-up at exit was interrupted" in finished.stderr
    assert interruption in finished.stderr


def test_a_clean_up_a_feeder_s_cancels_does_not_run() -> None:
    assert lines("cancel") == ["exiting", "feeder cancels fed"]


def test_the_time_feeders_took_in_its_place_is_not_counted_against_the_fed_one_alone() -> None:
    assert lines("budget") == ["exiting", "fed: 1.0", "unrelated, after both: 0.5"]


def test_transports_feeding_each_other_each_run_once() -> None:
    assert lines("loop") == ["exiting", "feeder", "fed"]


class Owner:
    pass


def hooks_held() -> int:
    return sum(map(len, _registry.hooks.values()))


def pairs_held() -> tuple[int, int]:
    """The pairs ``exit_before`` holds, and how many of them have both transports alive."""
    pairs = [pair for users in _registry.pairs.values() for pair in users.values()]
    return len(pairs), sum(user() is not None and used() is not None for user, used in pairs)


def entries_in_use() -> int:
    """The registry's entries still of use: pairs alive, and owners with a hook."""
    return pairs_held()[1] + sum(1 for hooks in _registry.hooks.values() if hooks)


def test_neither_a_hook_nor_an_order_keeps_its_transports_alive() -> None:
    hooks_before = hooks_held()
    user, used = Owner(), Owner()
    cancel = at_exit(owned(used, lambda: None))
    exit_before(user, used)
    refs = weakref.ref(user), weakref.ref(used)
    del user, used
    gc.collect()
    try:
        assert [ref() for ref in refs] == [None, None]
    finally:
        cancel()
    assert hooks_held() == hooks_before  # a cancelled hook leaves the registry


def test_entries_of_transports_gone_do_not_pile_up() -> None:
    # Dropped as new ones come (a process making a client per request makes thousands).
    # Entries emptied before this test (earlier tests' transports) wait for the next sweep,
    # which comes once the entries have doubled: enough new ones here make sure it comes.
    in_use = entries_in_use()
    spacers = []
    for _ in range(1000 + _registry.entries):
        exit_before(Owner(), Owner())  # each pair gone as soon as it is made
        at_exit(owned(Owner(), lambda: None))()  # registered, then cancelled
        # Take the addresses just freed, so that the next owners' ids are new ones, as in a
        # process whose memory is in use: an id taken again finds its old entry instead.
        spacers += [Owner(), Owner(), Owner()]
    assert pairs_held()[0] + len(_registry.hooks) <= 2 * in_use + 3
