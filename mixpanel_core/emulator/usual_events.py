"""The fast path for the usual valid event: validated and given its dedupe key in one pass.

A benchmark sends millions of well-formed events, and for each the full checks
(``validation.validate_event``) build lists of problems, then the store reads the same fields
again for the dedupe key. Here one small function per record reads each field once and either
returns the key, meaning the full checks would find nothing and change nothing, or None,
meaning only that the caller must run the full checks, which decide and explain.
"""

from __future__ import annotations

from collections.abc import Callable

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

UsualEventKey = Callable[[object], str | None]
"""The dedupe key of a usual valid event (as ``store.dedupe_key`` makes it); None otherwise."""


def usual_event_key(
    rules: EventRules, *, now: float, tokens: frozenset[str], values_known_plain: bool
) -> UsualEventKey:
    """Build, once per request, the per-record test of the usual event for ``rules``.

    With ``values_known_plain`` the caller vouches that no property value is an object or a
    list and no string is too long (``batch_text`` reads that off the request), so values are
    not looked at; the ``distinct_id`` length is checked regardless, as the key is made of it.
    """
    earliest = EARLIEST_IMPORT_TIME if rules.window_seconds is None else now - rules.window_seconds
    latest = now + MAX_FUTURE_SECONDS
    check_token = rules.check_token
    require_distinct_id = rules.require_distinct_id
    insert_id_match = INSERT_ID_PATTERN.fullmatch

    def key_of(record: object) -> str | None:
        # validate_event's rules, narrowed to what the usual event looks like: a required
        # $insert_id and numeric time, a string distinct_id. Anything else answers None.
        if type(record) is not dict:
            return None
        try:
            # Subscripts rather than .get(): no method call, and a missing field is unusual.
            props = record["properties"]
            event = record["event"]
            if type(props) is not dict:
                return None
            token = props["token"] if check_token else None
            raw_time = props["time"]
            distinct_id = props["distinct_id"]
            insert_id = props["$insert_id"]
        except KeyError:
            return None
        if type(event) is not str or not event:
            return None
        if check_token and (type(token) is not str or token not in tokens):
            return None
        if type(raw_time) is not float and type(raw_time) is not int:
            return None
        seconds = raw_time / 1000.0 if raw_time > MILLISECONDS_THRESHOLD else raw_time
        if not earliest <= seconds <= latest:
            return None
        if (
            type(distinct_id) is not str
            or len(distinct_id) > MAX_STRING_LENGTH
            or (require_distinct_id and distinct_id.lower() in PLACEHOLDER_DISTINCT_IDS)
        ):
            return None
        if type(insert_id) is not str or not (
            # The usual hex or alphanumeric id first: bytes.isalnum is true of ASCII letters and
            # digits only, and several times faster than str.isalnum. The pattern decides the rest.
            (len(insert_id) <= MAX_INSERT_ID_LENGTH and insert_id.encode().isalnum())
            or insert_id_match(insert_id) is not None
        ):
            return None
        if len(props) >= MAX_PROPERTIES or not (values_known_plain or _plain_values(props)):
            return None
        # store.dedupe_key's format, written out: a call per record would cost a fifth of
        # this function. __round__() is round() without the builtin's lookup of it. (An int
        # time: seconds * 1000 is exact, as is store's float product.)
        millis = (seconds * 1000).__round__()
        return f"{event!r}\x1f{millis}\x1f{distinct_id!r}\x1f{insert_id}"

    return key_of


def _plain_values(props: dict[str, object]) -> bool:
    """No value is an object or a list, and no string is longer than Mixpanel keeps."""
    for value in props.values():
        if type(value) is str:
            if len(value) > MAX_STRING_LENGTH:
                return False
        elif type(value) is dict or type(value) is list:
            return False
    return True
