"""Mixpanel's per-record rules: what makes one event or profile update invalid.

Validation also truncates strings longer than 255 characters in place, as Mixpanel does when it
stores them, so the caller must own the records it passes in (freshly parsed JSON).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

from mixpanel_core.api_limits import (
    EARLIEST_IMPORT_TIME,
    GROUP_OPERATIONS,
    MAP_OPERATIONS,
    MAX_DEPTH,
    MAX_FUTURE_SECONDS,
    MAX_INSERT_ID_LENGTH,
    MAX_PROPERTIES,
    MAX_STRING_LENGTH,
    MILLISECONDS_THRESHOLD,
    PLACEHOLDER_DISTINCT_IDS,
    PROFILE_OPERATIONS,
    TRACK_WINDOW_SECONDS,
)

MAX_COLLECTION_ITEMS = MAX_PROPERTIES
# An integer beyond this, either way, may be beyond a float's range: then no time at all.
_FLOAT_MAX = sys.float_info.max
INSERT_ID_PATTERN = re.compile(rf"[A-Za-z0-9-]{{1,{MAX_INSERT_ID_LENGTH}}}")

ENGAGE_OPERATIONS = frozenset(PROFILE_OPERATIONS)
GROUP_OPERATIONS_SET = frozenset(GROUP_OPERATIONS)
# Operations whose value is a property map, checked like event properties.
_MAP_OPERATIONS = frozenset(MAP_OPERATIONS)


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule of one record; ``field`` is a dotted path such as ``properties.time``."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class EventRules:
    """How strict an endpoint is with events; built once per endpoint."""

    # /track: an otherwise valid event older than this many seconds is dropped silently (no
    # failure, the answer as without it) and one more than an hour ahead takes its arrival
    # time, as Mixpanel documents for /track. None (/import): a time before 1971-01-01 or more
    # than an hour ahead is a problem.
    drop_older_than: float | None
    require_time: bool
    require_distinct_id: bool  # also rejects placeholder distinct_ids
    require_insert_id: bool
    check_token: bool
    merge_rules: bool  # a ``$merge`` event is checked by ``validate_merge`` instead


TRACK_RULES = EventRules(
    drop_older_than=TRACK_WINDOW_SECONDS,
    require_time=False,
    require_distinct_id=False,
    require_insert_id=False,
    check_token=True,
    merge_rules=False,
)
IMPORT_RULES = EventRules(
    drop_older_than=None,
    require_time=True,
    require_distinct_id=True,
    require_insert_id=True,
    check_token=False,
    merge_rules=True,
)

TimeFate = Literal["kept", "dropped", "retimed"]
"""What ``settle_time`` did with a valid event: kept as sent, dropped, or given a new time."""


def time_in_seconds(value: object) -> float | None:
    """Read an event ``time`` given in seconds or milliseconds; None if it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return value / 1000.0 if value > MILLISECONDS_THRESHOLD else float(value)
    except OverflowError:
        return None  # an integer beyond a float's range (1e309 and up) is no time either


def validate_event(
    record: object, rules: EventRules, *, now: float, tokens: frozenset[str]
) -> list[Problem]:
    """Every rule ``record`` breaks as an event for an endpoint with ``rules``; [] if valid."""
    if not isinstance(record, dict):
        return [Problem("", "a record must be a JSON object with 'event' and 'properties'")]
    problems: list[Problem] = []
    event = record.get("event")
    if not isinstance(event, str) or not event:
        problems.append(Problem("event", "'event' must be a non-empty string naming the event"))
    props = record.get("properties")
    if not isinstance(props, dict):
        problems.append(Problem("properties", "'properties' must be a JSON object"))
        return problems
    if rules.check_token:
        token = props.get("token")
        if type(token) is not str or token not in tokens:
            problems.append(
                Problem("properties.token", "'properties.token' is missing or not this project's")
            )
    # The common valid cases are tested inline first: this runs for every record of a benchmark.
    raw_time = props.get("time")
    if type(raw_time) is float or type(raw_time) is int:
        if rules.drop_older_than is None:
            # Only /import refuses a time for its value; /track settles it (settle_time).
            try:
                seconds = raw_time / 1000.0 if raw_time > MILLISECONDS_THRESHOLD else raw_time
            except OverflowError:
                seconds = math.inf  # an integer beyond a float's range: _check_time refuses it
            if not EARLIEST_IMPORT_TIME <= seconds <= now + MAX_FUTURE_SECONDS:
                _check_time(raw_time, rules, now, problems)
        elif not -_FLOAT_MAX <= raw_time <= _FLOAT_MAX:
            _check_time(raw_time, rules, now, problems)  # refuses an integer beyond a float's range
    else:
        _check_time(raw_time, rules, now, problems)
    distinct_id = props.get("distinct_id")
    if type(distinct_id) is not str or (
        rules.require_distinct_id and distinct_id.strip().lower() in PLACEHOLDER_DISTINCT_IDS
    ):
        _check_distinct_id(distinct_id, rules, problems)
    insert_id = props.get("$insert_id")
    if insert_id is None:
        if rules.require_insert_id:
            problems.append(Problem("properties.$insert_id", "'properties.$insert_id' is required"))
    elif type(insert_id) is not str or INSERT_ID_PATTERN.fullmatch(insert_id) is None:
        problems.append(
            Problem(
                "properties.$insert_id",
                "'properties.$insert_id' must be 1-36 characters of A-Z, a-z, 0-9 and '-'",
            )
        )
    _scan_properties(props, "properties", problems)
    return problems


def _check_time(value: object, rules: EventRules, now: float, problems: list[Problem]) -> None:
    if value is None:
        if rules.require_time:
            problems.append(
                Problem(
                    "properties.time",
                    "'properties.time' is required: seconds or milliseconds since the epoch",
                )
            )
        return
    seconds = time_in_seconds(value)
    if seconds is None:
        problems.append(
            Problem(
                "properties.time",
                "'properties.time' is invalid: must be seconds or milliseconds since the epoch",
            )
        )
    elif rules.drop_older_than is not None:
        return  # /track: settle_time drops an old event and retimes one from the future
    elif seconds < EARLIEST_IMPORT_TIME:
        problems.append(Problem("properties.time", "'properties.time' is before 1971-01-01"))
    elif seconds > now + MAX_FUTURE_SECONDS:
        problems.append(
            Problem("properties.time", "'properties.time' is more than 1 hour in the future")
        )


def settle_time(event: dict[str, Any], rules: EventRules, now: float) -> TimeFate:
    """What /track does with the time of an event ``validate_event`` found valid.

    Mixpanel's /track drops an event older than five days without a word (the request is
    answered as if it were not there) and overwrites a time more than an hour ahead with the
    arrival time, ``now``; /import refuses both instead (``validate_event``), so under its
    rules every event is kept as sent.
    """
    if rules.drop_older_than is None:
        return "kept"
    props = event["properties"]
    seconds = time_in_seconds(props.get("time"))
    if seconds is None:
        return "kept"  # no time: Mixpanel stamps the arrival time (see store.dedupe_key)
    if seconds < now - rules.drop_older_than:
        return "dropped"
    if seconds > now + MAX_FUTURE_SECONDS:
        props["time"] = now
        return "retimed"
    return "kept"


def _check_distinct_id(value: object, rules: EventRules, problems: list[Problem]) -> None:
    if value is None:
        if rules.require_distinct_id:
            problems.append(
                Problem(
                    "properties.distinct_id",
                    "'properties.distinct_id' is required (use \"\" for events with no user)",
                )
            )
        return
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.append(
            Problem("properties.distinct_id", "'properties.distinct_id' must be a string")
        )
    elif rules.require_distinct_id and _is_placeholder(value):
        problems.append(
            Problem(
                "properties.distinct_id",
                "'properties.distinct_id' is a placeholder value Mixpanel rejects;"
                ' use the real user id, or "" for events with no user',
            )
        )


def _is_placeholder(value: str | int | float) -> bool:
    # A JSON 0.0 or -1.0 is the number 0 or -1, whose text Python writes "0.0".
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower() in PLACEHOLDER_DISTINCT_IDS


def is_merge(record: object) -> TypeGuard[dict[str, Any]]:
    """Whether ``record`` is a ``$merge`` event (sent to /import, with rules of its own)."""
    return isinstance(record, dict) and record.get("event") == "$merge"


def validate_merge(record: dict[str, Any]) -> list[Problem]:
    """Every rule a ``$merge`` breaks: it carries ``$distinct_ids`` (two ids) and no time; the
    limits of every record (property count, nesting, long strings) apply to it too."""
    props = record.get("properties")
    if not isinstance(props, dict):
        return [Problem("properties", "'properties' must be a JSON object")]
    problems: list[Problem] = []
    ids = props.get("$distinct_ids")
    if not isinstance(ids, list) or len(ids) != 2:
        problems.append(
            Problem("properties.$distinct_ids", "'$distinct_ids' must be a list of two ids")
        )
    else:
        for index, value in enumerate(ids):
            field = f"properties.$distinct_ids[{index}]"
            if type(value) is not str or not value:
                problems.append(Problem(field, "must be a non-empty string"))
            elif value.strip().lower() in PLACEHOLDER_DISTINCT_IDS:
                problems.append(Problem(field, "is a placeholder value Mixpanel rejects"))
    _scan_properties(props, "properties", problems)
    return problems


def validate_profile(record: object, endpoint: str, *, tokens: frozenset[str]) -> list[Problem]:
    """Every rule ``record`` breaks as a profile update for /engage or /groups; [] if valid."""
    if not isinstance(record, dict):
        return [Problem("", "a profile update must be a JSON object")]
    problems: list[Problem] = []
    token = record.get("$token")
    if not isinstance(token, str) or token not in tokens:
        problems.append(Problem("$token", "'$token' is missing or not this project's"))
    if endpoint == "groups":
        operations = GROUP_OPERATIONS_SET
        if not isinstance(record.get("$group_key"), str) or not record["$group_key"]:
            problems.append(Problem("$group_key", "'$group_key' must be a non-empty string"))
        if record.get("$group_id") in (None, ""):
            problems.append(Problem("$group_id", "'$group_id' is required"))
    else:
        operations = ENGAGE_OPERATIONS
        if record.get("$distinct_id") in (None, ""):
            problems.append(Problem("$distinct_id", "'$distinct_id' is required"))
    found = 0
    for key, value in record.items():
        if key not in operations:
            if key in ENGAGE_OPERATIONS:  # $add or $append sent to /groups
                problems.append(
                    Problem(
                        key,
                        f"'{key}' is an operation on user profiles (/engage) only; /groups takes "
                        + ", ".join(GROUP_OPERATIONS),
                    )
                )
            continue
        found += 1
        if key in _MAP_OPERATIONS:
            if isinstance(value, dict):
                _scan_properties(value, key, problems)
            else:
                problems.append(Problem(key, f"'{key}' must be a JSON object of properties"))
        elif key == "$unset" and not (
            isinstance(value, list) and all(isinstance(name, str) for name in value)
        ):
            problems.append(Problem(key, "'$unset' must be a list of property names"))
    if not found:
        problems.append(
            Problem("", "no operation found; add one of " + ", ".join(sorted(operations)))
        )
    return problems


def truncate_as_stored(event: dict[str, Any]) -> None:
    """Truncate the long strings of a valid event's properties as ``validate_event`` does, for
    events accepted without it (the store does it when they are first read)."""
    _scan_properties(event["properties"], "properties", [])


def _scan_properties(props: dict[str, Any], where: str, problems: list[Problem]) -> None:
    """Check counts and nesting of a property map; truncate long strings as Mixpanel stores them."""
    if len(props) >= MAX_PROPERTIES:
        problems.append(
            Problem(
                where,
                f"'{where}' has {len(props)} properties; Mixpanel accepts fewer than"
                f" {MAX_PROPERTIES}",
            )
        )
    for key, value in props.items():
        kind = type(value)
        if kind is str:
            if len(value) > MAX_STRING_LENGTH:
                # Replacing a value of an existing key is safe while iterating.
                props[key] = value[:MAX_STRING_LENGTH]
        elif kind is dict or kind is list:
            _scan_container(value, 1, f"{where}.{key}", problems)


def _scan_container(
    value: dict[str, Any] | list[Any], depth: int, where: str, problems: list[Problem]
) -> None:
    if depth > MAX_DEPTH:
        problems.append(
            Problem(where, f"'{where}' nests objects or lists deeper than {MAX_DEPTH} levels")
        )
        return
    if len(value) >= MAX_COLLECTION_ITEMS:
        problems.append(
            Problem(
                where,
                f"'{where}' has {len(value)} entries; Mixpanel accepts fewer than"
                f" {MAX_COLLECTION_ITEMS}",
            )
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                if len(item) > MAX_STRING_LENGTH:
                    value[key] = item[:MAX_STRING_LENGTH]
            elif isinstance(item, dict | list):
                _scan_container(item, depth + 1, f"{where}.{key}", problems)
    else:
        for index, item in enumerate(value):
            if isinstance(item, str):
                if len(item) > MAX_STRING_LENGTH:
                    value[index] = item[:MAX_STRING_LENGTH]
            elif isinstance(item, dict | list):
                _scan_container(item, depth + 1, f"{where}.{index}", problems)
