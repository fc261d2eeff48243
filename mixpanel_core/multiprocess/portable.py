"""``PortableConfig``: a ``Config`` that can be pickled to a sender process.

``FrozenDict`` refuses the item assignments pickle uses to rebuild a ``dict`` subclass, so a
``Config`` is carried as plain nested tuples and rebuilt on the other side with the same
classes (their validators run again, which is cheap and keeps them honest).
"""

from __future__ import annotations

from typing import Any, cast

import attrs

from mixpanel_core.config import Config
from mixpanel_core.frozen import FrozenDict

_FROZEN = "frozen"
_ATTRS = "attrs"
_TUPLE = "tuple"
_PLAIN = "plain"


def _encode(value: object) -> tuple[str, Any]:
    if isinstance(value, FrozenDict):
        return (_FROZEN, tuple((key, _encode(item)) for key, item in value.items()))
    if attrs.has(type(value)):
        fields = attrs.fields(cast("type[attrs.AttrsInstance]", type(value)))
        return (
            _ATTRS,
            (type(value), tuple((f.alias, _encode(getattr(value, f.name))) for f in fields)),
        )
    if isinstance(value, tuple):
        return (_TUPLE, tuple(_encode(item) for item in value))
    return (_PLAIN, value)


def _decode(encoded: tuple[str, Any]) -> Any:
    kind, payload = encoded
    if kind == _FROZEN:
        return FrozenDict({key: _decode(item) for key, item in payload})
    if kind == _ATTRS:
        cls, fields = payload
        return cls(**{alias: _decode(item) for alias, item in fields})
    if kind == _TUPLE:
        return tuple(_decode(item) for item in payload)
    return payload


@attrs.frozen
class PortableConfig:
    """A picklable image of a ``Config``; ``config()`` rebuilds it."""

    encoded: tuple[str, Any]

    @classmethod
    def of(cls, config: Config) -> PortableConfig:
        return cls(_encode(config))

    def config(self) -> Config:
        rebuilt: Config = _decode(self.encoded)
        return rebuilt
