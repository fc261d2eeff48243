"""The fast path for the usual valid event: validated and given its dedupe key in one pass.

A benchmark sends millions of well-formed events, and for each the full checks
(``validation.validate_event``) build lists of problems, then the store reads the same fields
again for the dedupe key. Here one loop reads each field of each record once and, for a run of
usual events, returns their keys: the full checks would find nothing in them and change
nothing. It stops at the first record that is not usual, which only means that the caller must
run the full checks on it, which decide and explain.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

from mixpanel_core.api_limits import (
    EARLIEST_IMPORT_TIME,
    MAX_FUTURE_SECONDS,
    MAX_INSERT_ID_LENGTH,
    MAX_PROPERTIES,
    MAX_STRING_LENGTH,
    MILLISECONDS_THRESHOLD,
    PLACEHOLDER_DISTINCT_IDS,
)
from mixpanel_core.emulator.validation import INSERT_ID_PATTERN, EventRules

# Floats: a float compared with, or multiplied by, a float skips converting an int each time.
# Both are exact, so every answer is the same as with the ints.
_MILLISECONDS_THRESHOLD = float(MILLISECONDS_THRESHOLD)
_MILLIS_PER_SECOND = 1000.0

UsualEventKeys = Callable[[list[Any], int], list[str]]
"""``keys_from(records, start)``: the dedupe keys (as ``store.dedupe_key`` makes them) of
``records[start:]`` up to, not including, the first record that is not a usual valid event."""


def usual_event_keys(
    rules: EventRules, *, now: float, tokens: frozenset[str], values_known_plain: bool
) -> UsualEventKeys:
    """Build, once per request, the fast path for events under ``rules``.

    With ``values_known_plain`` the caller vouches that no property value is an object or a
    list and no string is too long (``batch_text`` reads that off the request), so values are
    not looked at; the ``distinct_id`` length is checked regardless, as the key is made of it.
    """
    # On /track an event outside these bounds is valid but dropped or retimed (settle_time):
    # not usual either way, so the full checks and settle_time take it.
    drop_older_than = rules.drop_older_than
    earliest = EARLIEST_IMPORT_TIME if drop_older_than is None else now - drop_older_than
    latest = now + MAX_FUTURE_SECONDS
    check_token = rules.check_token
    require_distinct_id = rules.require_distinct_id
    merge_rules = rules.merge_rules
    insert_id_match = INSERT_ID_PATTERN.fullmatch

    def keys_from(records: list[Any], start: int) -> list[str]:
        # One loop, no call per record: validate_event's rules, narrowed to what the usual
        # event looks like (a required $insert_id and numeric time, a string distinct_id).
        # Every doubt breaks out.
        keys: list[str] = []
        append = keys.append
        for record in islice(records, start, None):
            if type(record) is not dict:
                break
            try:
                # Subscripts rather than .get(): no method call; a missing field is unusual.
                props = record["properties"]
                event = record["event"]
                if type(props) is not dict:
                    break
                token = props["token"] if check_token else None
                raw_time = props["time"]
                distinct_id = props["distinct_id"]
                insert_id = props["$insert_id"]
            except KeyError:
                break
            # A $merge has rules of its own (validate_merge), whatever else it holds.
            if type(event) is not str or not event or (merge_rules and event == "$merge"):
                break
            if check_token and (type(token) is not str or token not in tokens):
                break
            if type(raw_time) is not float and type(raw_time) is not int:
                break
            try:
                seconds = raw_time / 1000.0 if raw_time > _MILLISECONDS_THRESHOLD else raw_time
            except OverflowError:
                break  # an integer beyond a float's range: the full checks refuse it
            if not earliest <= seconds <= latest:
                break
            if (
                type(distinct_id) is not str
                or len(distinct_id) > MAX_STRING_LENGTH
                # Trimmed, as validate_event compares: " null " is a placeholder too.
                or (require_distinct_id and distinct_id.strip().lower() in PLACEHOLDER_DISTINCT_IDS)
            ):
                break
            if type(insert_id) is not str or not (
                # The usual hex or alphanumeric id first: bytes.isalnum is true of ASCII letters
                # and digits only, and several times faster than str.isalnum. The pattern
                # decides the rest.
                (
                    len(insert_id) <= MAX_INSERT_ID_LENGTH
                    and insert_id.isascii()
                    and insert_id.encode().isalnum()
                )
                or insert_id_match(insert_id) is not None
            ):
                break
            if len(props) >= MAX_PROPERTIES or not (values_known_plain or _plain_values(props)):
                break
            if "\x1f" in event or "\x1f" in distinct_id:
                break  # their key takes store.dedupe_key's quoted form
            # store.dedupe_key's usual form, written out. __round__() is round() without the
            # builtin's lookup of it. (An int time: seconds * 1000.0 is exact, as in the store.)
            millis = (seconds * _MILLIS_PER_SECOND).__round__()
            append(f"{insert_id}\x1f{millis}\x1f{event}\x1f{distinct_id}")
        return keys

    return keys_from


def _plain_values(props: dict[str, object]) -> bool:
    """No value is an object or a list, and no string is longer than Mixpanel keeps."""
    for value in props.values():
        if type(value) is str:
            if len(value) > MAX_STRING_LENGTH:
                return False
        elif type(value) is dict or type(value) is list:
            return False
    return True
