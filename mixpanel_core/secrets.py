"""``Secret``: a string that never shows itself in reprs, logs or error messages."""

from __future__ import annotations

import attrs


@attrs.frozen(repr=False)
class Secret:
    """Wraps a credential; ``reveal()`` is the only way to read it, so leaks are deliberate."""

    _value: str = attrs.field(alias="value")

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)
