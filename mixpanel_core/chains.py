"""Walking what an exception chains, without recursion.

A chain (``__cause__``, ``__context__``, what an exception group or a wrapper holds) may be
longer than the interpreter's recursion limit, and may loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Node = TypeVar("Node")


def walked(start: Node, links: Callable[[Node], Iterable[Node | None]]) -> Iterator[Node]:
    """``start`` and everything ``links`` leads to from it, each once (by identity)."""
    seen: set[int] = set()
    waiting = [start]
    while waiting:
        each = waiting.pop()
        if id(each) in seen:
            continue
        seen.add(id(each))
        yield each
        waiting += [linked for linked in links(each) if linked is not None]
