"""``mixpanel_limits``: refuses, before sending, what Mixpanel's ingestion API would refuse.

Every rule names the field and the limit, so a problem is fixed where it is made rather than
found later in a dead-letter topic. The numbers are Mixpanel's (see docs/plugins.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import attrs

from mixpanel_core import hookimpl
from mixpanel_core.api_limits import (
    EARLIEST_IMPORT_TIME,
    MAP_OPERATIONS,
    MAX_DEPTH,
    MAX_FUTURE_SECONDS,
    MAX_PROPERTIES,
    MAX_RECORD_BYTES,
    MILLISECONDS_THRESHOLD,
    PLACEHOLDER_DISTINCT_IDS,
    PROFILE_OPERATIONS,
    TRACK_SEND_MARGIN,
    TRACK_WINDOW_SECONDS,
)
from mixpanel_core.errors import NotJSONError, Problem
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.messages import Event, GroupUpdate, Message, PeopleUpdate
from mixpanel_core.plugin import PluginContext
from mixpanel_core.schema import read, setting

# The allowance of "" as a distinct id is this plugin's choice (a config option), not a limit.
PLACEHOLDER_IDS = PLACEHOLDER_DISTINCT_IDS | {""}


@attrs.frozen
class LimitsOptions:
    """The ``[plugins.mixpanel_limits]`` table."""

    allow_empty_distinct_id: bool = setting(
        True, doc='Accept `""` as distinct_id (Mixpanel\'s way to say "no user").'
    )


_LONGEST_PLACEHOLDER = max(map(len, PLACEHOLDER_IDS))


def _cannot_be_placeholder(value: str) -> bool:
    """A cheap test first: a string longer than every placeholder is none, unless spaces
    around one make it so long (Mixpanel strips them)."""
    return len(value) > _LONGEST_PLACEHOLDER and not value[0].isspace() and not value[-1].isspace()


def _is_insert_id(value: str) -> bool:
    # Dashes alone ("-") are ids too: Mixpanel's rule is the character set, not a letter.
    letters_and_digits = value.replace("-", "")
    return (
        0 < len(value) <= 36
        and value.isascii()
        and (not letters_and_digits or letters_and_digits.isalnum())
    )


def _kind(value: Any) -> str:
    """What ``value`` is, for an error: never the value itself, which may be large (and is
    logged under ``on_invalid = "drop"``) or personal."""
    if isinstance(value, FrozenDict):
        return "an object"
    if isinstance(value, tuple):
        return "a list"
    if type(value) is str and not value:
        return "an empty one"
    return "None" if value is None else type(value).__name__


def _distinct_id_problem(value: Any, field: str, allow_empty: bool) -> Problem | None:
    kind = type(value)
    if kind is str:
        if _cannot_be_placeholder(value):
            return None
        if value == "" and allow_empty:
            return None
        text = value
    elif kind is int:
        text = str(value)
    elif value is None:
        # The advice only where "" is taken: elsewhere a user following it is refused again.
        return Problem(
            field, 'is required (use "" for events with no user)' if allow_empty else "is required"
        )
    else:
        return Problem(field, f"must be a string, not {_kind(value)}")
    # Blanks (" ") are ids to Mixpanel: only "" itself is the empty one.
    if text == "" or text.strip().lower() in PLACEHOLDER_DISTINCT_IDS:
        return Problem(field, f"{value!r} is a placeholder value Mixpanel rejects")
    return None


_CONTAINERS = (dict, tuple, list)
"""A JSON object or list: frozen (``FrozenDict``, ``tuple``), or plain inside a ``FrozenDict``
a plugin built by hand, which nothing froze (review R72 F3); a tuple of types, as
``isinstance`` takes a union several times slower."""


def _shape_problems(value: Any, field: str, depth: int, out: list[Problem]) -> None:
    if isinstance(value, _CONTAINERS):
        if depth > MAX_DEPTH:
            out.append(Problem(field, f"nesting deeper than {MAX_DEPTH} levels"))
            return
        if len(value) >= MAX_PROPERTIES:
            what = "keys" if isinstance(value, dict) else "elements"
            out.append(
                Problem(field, f"has {len(value)} {what}; must be fewer than {MAX_PROPERTIES}")
            )
        items: Iterable[tuple[str, Any]] = (
            value.items()
            if isinstance(value, dict)
            else ((f"[{i}]", v) for i, v in enumerate(value))
        )
        for key, item in items:
            if isinstance(item, _CONTAINERS):
                sub = f"{field}{key}" if key.startswith("[") else f"{field}.{key}"
                _shape_problems(item, sub, depth + 1, out)


def _properties_problems(props: FrozenDict, field: str, out: list[Problem]) -> None:
    if len(props) >= MAX_PROPERTIES:
        out.append(
            Problem(field, f"has {len(props)} properties; must be fewer than {MAX_PROPERTIES}")
        )
    for key, value in props.items():
        if isinstance(value, _CONTAINERS):
            _shape_problems(value, f"{field}.{key}", 1, out)


_TRACK_OLDEST = TRACK_WINDOW_SECONDS - TRACK_SEND_MARGIN
"""The age past which a ``/track`` event is refused (see ``TRACK_SEND_MARGIN``)."""


def _time_problem(value: Any, field: str, endpoint: str, now: float) -> Problem | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Problem(field, "must be a number of seconds (or milliseconds) since the epoch")
    # The bounds are scaled to the value's unit rather than the value divided: an integer
    # too large for a float (Python's ints have no bound) cannot be divided into one.
    scale = 1000 if value > MILLISECONDS_THRESHOLD else 1
    if value > (now + MAX_FUTURE_SECONDS) * scale:
        return Problem(field, "is more than 1 hour in the future")
    if endpoint == "import" and value < EARLIEST_IMPORT_TIME * scale:
        return Problem(field, "is before 1971-01-01, the earliest time /import accepts")
    if endpoint == "track" and value < (now - _TRACK_OLDEST) * scale:
        return Problem(
            field,
            "is older than 5 days less an hour (the time it may wait to be sent): /track drops "
            "events older than 5 days without a word; use import_data",
        )
    return None


class MixpanelLimits:
    """Validates each message against Mixpanel's limits (see the module docstring)."""

    def __init__(self, options: LimitsOptions | None = None) -> None:
        self.options = options or LimitsOptions()

    @classmethod
    def from_config(cls, context: PluginContext) -> MixpanelLimits:
        return cls(read(LimitsOptions, context.options, context.path))

    @hookimpl
    def mixpanel_validate(self, message: Message) -> list[Problem] | None:
        # The usual tracked event passes one expression; anything unusual, or invalid, takes
        # the full checks below, which name every problem. (Inlined: this runs per event.)
        record = message.record
        props = record.get("properties")
        if message.kind == "event" and type(props) is FrozenDict:
            name = record.get("event")
            distinct_id = props.get("distinct_id")
            event_time: Any = props.get("time")
            insert_id = props.get("$insert_id")
            now = time.time()  # looked up per call: a test's patched clock is honoured
            try:
                data = message.json()  # encoded once: transports send these same bytes
            except NotJSONError as exc:  # an integer too long to write
                return list(exc.problems)
            if (
                type(name) is str
                and name != ""
                and props.get("token")
                and type(distinct_id) is str
                and (
                    # _cannot_be_placeholder, written out: this runs for every event.
                    (
                        len(distinct_id) > _LONGEST_PLACEHOLDER
                        and not distinct_id[0].isspace()
                        and not distinct_id[-1].isspace()
                    )
                    or distinct_id.strip().lower() not in PLACEHOLDER_IDS
                )
                and (type(event_time) is float or type(event_time) is int)
                and now - _TRACK_OLDEST < event_time < now + MAX_FUTURE_SECONDS
                and type(insert_id) is str
                and len(insert_id) <= 36
                # bytes.isalnum: ASCII letters and digits only, several times faster than
                # str.isalnum, which asks the Unicode tables about every character.
                # (isascii first: a lone surrogate, from os.fsdecode, cannot be encoded)
                and insert_id.isascii()
                and insert_id.encode().isalnum()
                and len(props) < MAX_PROPERTIES
                and len(data) < MAX_RECORD_BYTES
                # Nothing nested: the only braces are the record's and its properties' (one
                # inside a string only raises the count and sends the event to the full checks).
                and data.count(b"{") == 2
                and data.find(b"[") < 0  # a third cheaper than ``b"[" not in data``
            ):
                return None
        out: list[Problem] = []
        if isinstance(message, Event):
            self._event(message, out)
        elif isinstance(message, PeopleUpdate):
            self._profile(message, out)
        if not out:
            try:
                size = len(message.json())
            except NotJSONError as exc:  # an integer too long to write
                return list(exc.problems)
            if size >= MAX_RECORD_BYTES:
                out.append(Problem("record", f"is {size} bytes of JSON; must be under 1 MB"))
        return out

    def _event(self, message: Event, out: list[Problem]) -> None:
        # Called for every tracked event: checks are ordered and written for the common case.
        record = message.record
        name = record.get("event")
        if type(name) is not str or not name:
            out.append(Problem("event", f"must be a non-empty string, not {_kind(name)}"))
        props = record.get("properties")
        if type(props) is not FrozenDict:
            out.append(Problem("properties", "must be an object"))
            return
        get = props.get
        # /import authenticates the request (service account, API secret or token as the
        # user name), and Mixpanel takes its events without a token in them: only /track
        # events need one.
        if not get("token") and message.endpoint != "import":
            out.append(Problem("properties.token", "is required on /track (the project token)"))
        kind = message.kind
        if kind == "merge":
            self._merge_ids(get("$distinct_ids"), out)
        else:
            distinct_id = get("distinct_id")
            if type(distinct_id) is not str or not _cannot_be_placeholder(distinct_id):
                found = _distinct_id_problem(
                    distinct_id,
                    "properties.distinct_id",
                    self.options.allow_empty_distinct_id and kind != "alias",
                )
                if found:
                    out.append(found)
        if kind == "alias":
            found = _distinct_id_problem(get("alias"), "properties.alias", False)
            if found:
                out.append(found)
        elif kind != "merge":
            found = _time_problem(get("time"), "properties.time", message.endpoint, time.time())
            if found:
                out.append(found)
            insert_id = get("$insert_id")
            if insert_id is None:
                if message.endpoint == "import":
                    out.append(Problem("properties.$insert_id", "is required on /import"))
            elif type(insert_id) is not str or (
                not (len(insert_id) <= 36 and insert_id.isalnum() and insert_id.isascii())
                and not _is_insert_id(insert_id)
            ):
                out.append(
                    Problem("properties.$insert_id", "must be 1-36 characters of A-Z a-z 0-9 -")
                )
        _properties_problems(props, "properties", out)

    @staticmethod
    def _merge_ids(ids: Any, out: list[Problem]) -> None:
        if not isinstance(ids, tuple) or len(ids) != 2:
            out.append(Problem("properties.$distinct_ids", "must be a list of two ids"))
            return
        for i, value in enumerate(ids):
            field = f"properties.$distinct_ids[{i}]"
            # Strings only: the emulator refuses a number here, though /track takes one.
            if type(value) is not str or not value:
                out.append(Problem(field, "must be a non-empty string"))
                continue
            found = _distinct_id_problem(value, field, False)
            if found:
                out.append(found)

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
        allowed = message.operations
        # Every operation the record carries is checked, not only the first: Mixpanel applies
        # them all, and refuses the update for any one that is malformed.
        present = [op for op in PROFILE_OPERATIONS if op in record]
        for operation in present:
            if operation not in allowed:
                out.append(
                    Problem(
                        operation,
                        f"is not an operation of /{message.endpoint}; it takes "
                        f"{', '.join(allowed)}",
                    )
                )
            else:
                _operation_problems(operation, record[operation], out)
        if not present:
            out.append(Problem("record", f"needs one operation: {', '.join(allowed)}"))


def _operation_problems(operation: str, value: Any, out: list[Problem]) -> None:
    """The problems of one profile operation's value (``$set``'s object, ``$unset``'s list)."""
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
