"""``mixpanel_limits``: refuses, before sending, what Mixpanel's ingestion API would refuse.

Every rule names the field and the limit, so a problem is fixed where it is made rather than
found later in a dead-letter topic. The numbers are Mixpanel's (see docs/hooks.md).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

import attrs

from mixpanel_core import hookimpl
from mixpanel_core.errors import Problem
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.messages import Alias, Event, GroupUpdate, Merge, Message, PeopleUpdate
from mixpanel_core.plugin import PluginContext
from mixpanel_core.schema import read, setting
from mixpanel_core.wire import dumps

MAX_PROPERTIES = 255
"""Records must have fewer than this many properties; so must nested objects and lists."""
MAX_DEPTH = 3
MAX_RECORD_BYTES = 1_000_000
EARLIEST_TIME = 31_536_000  # 1971-01-01T00:00:00Z, the earliest time /import takes
FUTURE_SLACK = 3600  # /import refuses events more than an hour ahead
TRACK_MAX_AGE = 5 * 24 * 3600  # /track takes only the last five days
MILLISECONDS_ABOVE = 100_000_000_000  # a time larger than this is in milliseconds
INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
PLACEHOLDER_IDS = frozenset(
    {
        "anon",
        "anonymous",
        "nil",
        "null",
        "none",
        "undefined",
        "unknown",
        "0",
        "-1",
        "[]",
        "{}",
        "00000000-0000-0000-0000-000000000000",
        "<nil>",
        "lmy47d",
        "",
    }
)
MAP_OPERATIONS = ("$set", "$set_once", "$add", "$append", "$union", "$remove")


@attrs.frozen
class LimitsOptions:
    """The ``[plugins.mixpanel_limits]`` table."""

    check_size: bool = setting(
        True, doc="Serialize each record to check the 1 MB limit (costs about a microsecond)."
    )
    allow_empty_distinct_id: bool = setting(
        True, doc='Accept `""` as distinct_id (Mixpanel\'s way to say "no user").'
    )


def _distinct_id_problem(value: Any, field: str, allow_empty: bool) -> Problem | None:
    if value is None:
        return Problem(field, 'is required (use "" for events with no user)')
    if isinstance(value, bool) or not isinstance(value, str | int):
        return Problem(field, f"must be a string, not {type(value).__name__}")
    if value == "" and allow_empty:
        return None
    if str(value).strip().lower() in PLACEHOLDER_IDS:
        return Problem(field, f"{value!r} is a placeholder value Mixpanel rejects")
    return None


def _shape_problems(value: Any, field: str, depth: int, out: list[Problem]) -> None:
    if isinstance(value, FrozenDict | tuple):
        if depth > MAX_DEPTH:
            out.append(Problem(field, f"nesting deeper than {MAX_DEPTH} levels"))
            return
        if len(value) >= MAX_PROPERTIES:
            what = "keys" if isinstance(value, FrozenDict) else "elements"
            out.append(
                Problem(field, f"has {len(value)} {what}; must be fewer than {MAX_PROPERTIES}")
            )
        items: Iterable[tuple[str, Any]] = (
            value.items()
            if isinstance(value, FrozenDict)
            else ((f"[{i}]", v) for i, v in enumerate(value))
        )
        for key, item in items:
            if isinstance(item, FrozenDict | tuple):
                sub = f"{field}{key}" if key.startswith("[") else f"{field}.{key}"
                _shape_problems(item, sub, depth + 1, out)


def _properties_problems(props: FrozenDict, field: str, out: list[Problem]) -> None:
    if len(props) >= MAX_PROPERTIES:
        out.append(
            Problem(field, f"has {len(props)} properties; must be fewer than {MAX_PROPERTIES}")
        )
    for key, value in props.items():
        if isinstance(value, FrozenDict | tuple):
            _shape_problems(value, f"{field}.{key}", 1, out)


def _time_problem(value: Any, field: str, endpoint: str, now: float) -> Problem | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Problem(field, "must be a number of seconds (or milliseconds) since the epoch")
    seconds = value / 1000 if value > MILLISECONDS_ABOVE else value
    if seconds > now + FUTURE_SLACK:
        return Problem(field, "is more than 1 hour in the future")
    if endpoint == "import" and seconds < EARLIEST_TIME:
        return Problem(field, "is before 1971-01-01, the earliest time /import accepts")
    if endpoint == "track" and seconds < now - TRACK_MAX_AGE:
        return Problem(field, "is older than 5 days, which /track refuses; use import_data")
    return None


class MixpanelLimits:
    """Validates each message against Mixpanel's limits (see the module docstring)."""

    def __init__(self, options: LimitsOptions | None = None) -> None:
        self.options = options or LimitsOptions()

    @classmethod
    def from_config(cls, context: PluginContext) -> MixpanelLimits:
        return cls(read(LimitsOptions, context.options, context.path))

    @hookimpl
    def mixpanel_validate(self, message: Message) -> list[Problem]:
        out: list[Problem] = []
        if isinstance(message, Event):
            self._event(message, out)
        elif isinstance(message, PeopleUpdate):
            self._profile(message, out)
        if self.options.check_size and not out:
            size = len(dumps(message.record))
            if size >= MAX_RECORD_BYTES:
                out.append(Problem("record", f"is {size} bytes of JSON; must be under 1 MB"))
        return out

    def _event(self, message: Event, out: list[Problem]) -> None:
        record = message.record
        name = record.get("event")
        if not isinstance(name, str) or not name:
            out.append(Problem("event", f"must be a non-empty string, not {name!r}"))
        props = record.get("properties")
        if not isinstance(props, FrozenDict):
            out.append(Problem("properties", "must be an object"))
            return
        if not props.get("token"):
            out.append(Problem("properties.token", "is required (the project token)"))
        allow_empty = self.options.allow_empty_distinct_id
        if isinstance(message, Merge):
            ids = props.get("$distinct_ids")
            if not isinstance(ids, tuple) or len(ids) != 2:
                out.append(Problem("properties.$distinct_ids", "must be a list of two ids"))
            else:
                for i, value in enumerate(ids):
                    found = _distinct_id_problem(value, f"properties.$distinct_ids[{i}]", False)
                    if found:
                        out.append(found)
        else:
            found = _distinct_id_problem(
                props.get("distinct_id"),
                "properties.distinct_id",
                allow_empty and not isinstance(message, Alias),
            )
            if found:
                out.append(found)
        if isinstance(message, Alias):
            found = _distinct_id_problem(props.get("alias"), "properties.alias", False)
            if found:
                out.append(found)
        elif not isinstance(message, Merge):
            found = _time_problem(
                props.get("time"), "properties.time", message.endpoint, time.time()
            )
            if found:
                out.append(found)
            insert_id = props.get("$insert_id")
            if insert_id is not None and (
                not isinstance(insert_id, str) or not INSERT_ID.fullmatch(insert_id)
            ):
                out.append(
                    Problem("properties.$insert_id", "must be 1-36 characters of A-Z a-z 0-9 -")
                )
            elif insert_id is None and message.endpoint == "import":
                out.append(Problem("properties.$insert_id", "is required on /import"))
        _properties_problems(props, "properties", out)

    def _profile(self, message: PeopleUpdate, out: list[Problem]) -> None:
        record = message.record
        if not record.get("$token"):
            out.append(Problem("$token", "is required (the project token)"))
        if isinstance(message, GroupUpdate):
            if not isinstance(record.get("$group_key"), str) or not record.get("$group_key"):
                out.append(Problem("$group_key", "must be a non-empty string"))
            group_id = record.get("$group_id")
            if isinstance(group_id, bool) or not isinstance(group_id, str | int) or group_id == "":
                out.append(Problem("$group_id", "must be a non-empty string or an integer"))
        else:
            found = _distinct_id_problem(
                record.get("$distinct_id"), "$distinct_id", allow_empty=False
            )
            if found:
                out.append(found)
        operation = message.operation
        if operation is None:
            out.append(Problem("record", "needs one operation: $set, $set_once, $add, ..."))
            return
        value = record[operation]
        if operation in MAP_OPERATIONS:
            if not isinstance(value, FrozenDict):
                out.append(Problem(operation, "must be an object of property names to values"))
                return
            _properties_problems(value, operation, out)
            if operation == "$add":
                for key, amount in value.items():
                    if isinstance(amount, bool) or not isinstance(amount, int | float):
                        out.append(Problem(f"$add.{key}", "must be a number"))
        elif operation == "$unset" and (
            not isinstance(value, tuple) or not all(isinstance(v, str) for v in value)
        ):
            out.append(Problem("$unset", "must be a list of property names"))
