"""What an error of ours says of someone else's exception (``told``) is found for a chain of
exceptions longer than the interpreter's recursion limit, as a traceback of it prints it:
walked by recursion, the search for credentials raised RecursionError instead (review R35)."""

from __future__ import annotations

import sys

from mixpanel_core.redactor import told


def chained(length: int, text: str = "step") -> BaseException:
    error: BaseException | None = None
    for step in range(length):
        try:
            raise ValueError(f"{text} {step}") from error
        except ValueError as raised:
            error = raised
    assert error is not None
    return error


def test_a_chain_longer_than_the_recursion_limit_is_searched_whole() -> None:
    length = sys.getrecursionlimit() + 200
    quiet = told(chained(length), lambda text: text)
    assert quiet[0] == f"ValueError: step {length - 1}"
    assert quiet[1] is not None

    # The credential is in the first exception of the chain, the last one printed.
    error = chained(length, "SEKRET")
    said, cause = told(error, lambda text: text.replace("SEKRET 0", "<secret>"))
    assert cause is None
    assert said.startswith(f"ValueError: SEKRET {length - 1} (raised at ")
