"""Official-style ``serializer`` classes, and how messages are frozen with them.

The official SDK encodes each record with ``json.dumps(record, cls=serializer)``, so a
serializer's ``default()`` decides how values JSON cannot carry are written. mixpanel-core
freezes records value by value instead, so it takes from a serializer exactly that: its
``default()``, as a ``Fallback``. A serializer that rewrites the whole document (its own
``encode`` or ``iterencode``) cannot be honoured that way and is refused, rather than
ignored while the records it was meant to change go out unchanged.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from mixpanel_core.errors import ConfigError
from mixpanel_core.frozen import DATETIME_FORMAT, Fallback, JSONValue, format_datetime


class DatetimeSerializer(json.JSONEncoder):
    """The official encoder: datetimes as ``%Y-%m-%dT%H:%M:%S``; subclass it to extend."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime.datetime):
            return o.strftime(DATETIME_FORMAT)
        return json.JSONEncoder.default(self, o)


def json_dumps(data: Any, cls: type[json.JSONEncoder] | None = None) -> str:
    """The official helper: compact JSON through ``cls``."""
    return json.dumps(data, separators=(",", ":"), cls=cls)


def as_fallback(serializer: Fallback | type[json.JSONEncoder] | None) -> Fallback | None:
    """What values JSON cannot carry are converted with: a function taken as it is, or an
    official-style encoder class's ``default()``; ``None`` for the default (datetimes)."""
    if not isinstance(serializer, type):
        return serializer
    if not issubclass(serializer, json.JSONEncoder):
        raise ConfigError(
            f"serializer: {serializer.__name__} is not a json.JSONEncoder subclass; give an "
            "encoder class (as the official SDK takes) or a function converting one value"
        )
    if serializer is DatetimeSerializer:
        return format_datetime
    for method in ("encode", "iterencode"):
        if getattr(serializer, method) is not getattr(json.JSONEncoder, method):
            raise ConfigError(
                f"serializer: {serializer.__name__} overrides {method}(); mixpanel-core "
                "applies only default() (to each value JSON cannot carry), so a serializer "
                "that rewrites whole records would be ignored. Change the properties "
                "before the call, or in a mixpanel_enrich plugin"
            )
    encoder = serializer(separators=(",", ":"))

    def convert(value: object) -> JSONValue:
        return json.loads(encoder.encode(value))

    return convert
