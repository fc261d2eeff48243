"""``weakly``: a bound method that does not keep its object alive.

For callbacks handed to something a background thread holds (a queue, a producer): holding
the object through them would make a reference cycle, or keep it alive through the thread,
and an object dropped without ``close()`` would never be freed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import ParamSpec

P = ParamSpec("P")


def weakly(method: Callable[P, object]) -> Callable[P, None]:
    """``method``, holding its object weakly: a call once the object is gone does nothing."""
    ref = weakref.WeakMethod(method)

    def call(*args: P.args, **kwargs: P.kwargs) -> None:
        bound = ref()
        if bound is not None:
            bound(*args, **kwargs)

    return call
