"""``Secret``: a string that never shows itself in reprs, logs or error messages."""

from __future__ import annotations

from typing import Any


class Secret:
    """Wraps a credential; ``reveal()`` is the only way to read it, so leaks are deliberate.

    A plain class, not an attrs one: ``attrs.asdict`` of a settings object would otherwise
    walk into it and copy the value out.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        # Settings cross into sender processes by pickle; the value must survive that.
        return (Secret, (self._value,))
