"""Mixpanel's ingestion limits and rules, as its API reference documents them: one source.

The client-side validator (``plugins.mixpanel_limits``), the batching of the ingestion client
and the emulator's server-side checks all read these, so they cannot drift apart.
"""

from __future__ import annotations

MIB = 1024 * 1024

MAX_RECORDS_PER_REQUEST = 2000
"""Records per request to ``/track``, ``/import`` and ``/engage``."""
MAX_GROUP_RECORDS_PER_REQUEST = 200
"""What we keep ``/groups`` requests to (a widely used integration caps it there)."""
MAX_BODY_BYTES = 2 * MIB
"""Uncompressed request body: documented as 10 MB for ``/import``, 2 MiB on older pages and in
the 413 sample; the safer number, with a split on 413 either way."""
LARGEST_BODY_BYTES = 10_000_000
"""The most any page documents (10 MB, for ``/import``): no request body may be larger."""
MAX_RECORD_BYTES = 1_000_000
"""One record's uncompressed JSON must be under 1 MB."""

MAX_PROPERTIES = 255
"""A record must have fewer properties than this; so must nested objects and lists."""
MAX_DEPTH = 3
"""Objects and lists nest at most this deep inside a property value."""
MAX_STRING_LENGTH = 255
"""Longer strings are truncated by Mixpanel, not rejected."""

EARLIEST_IMPORT_TIME = 31_536_000
"""1971-01-01T00:00:00Z: ``/import`` refuses anything older."""
MAX_FUTURE_SECONDS = 3600
"""``/import`` refuses events more than an hour ahead; ``/track`` gives them their arrival
time (``mixpanel_limits`` refuses both, as a time so far off is a mistake)."""
TRACK_WINDOW_SECONDS = 5 * 86400
"""``/track`` keeps only events of the last five days, and drops older ones silently with a
success answer (``mixpanel_limits`` refuses them: they go to ``/import``)."""
TRACK_SEND_MARGIN = 3600
"""How long before ``/track`` would drop it ``mixpanel_limits`` refuses an event: checked once,
it may wait that long before it is sent (a linger, a retry budget, a queue, a forwarder's
lag), and Mixpanel's clock may be ahead of ours."""
MILLISECONDS_THRESHOLD = 10_000_000_000
"""A ``time`` above this is in milliseconds: as seconds it would be after the year 2286, and
any acceptable time (1971 or later) in milliseconds is above 3e10."""

MAX_INSERT_ID_LENGTH = 36
"""``$insert_id``: 1 to 36 characters of ``A-Z a-z 0-9 -``."""

PLACEHOLDER_DISTINCT_IDS = frozenset(
    {
        "anon",
        "anonymous",
        "nil",
        "null",
        "none",
        "n/a",
        "na",
        "true",
        "false",
        "undefined",
        "unknown",
        "0",
        "-1",
        "[]",
        "{}",
        "<nil>",
        "lmy47d",
        "00000000-0000-0000-0000-000000000000",
    }
)
"""Values Mixpanel refuses as a ``distinct_id`` (compared case-insensitively, trimmed): those
its own import tool (mixpanel-import) refuses as bad user ids."""

PROFILE_OPERATIONS = (
    "$set",
    "$set_once",
    "$add",
    "$append",
    "$union",
    "$unset",
    "$remove",
    "$delete",
)
"""The operations of a user profile update (``/engage``)."""
GROUP_OPERATIONS = ("$set", "$set_once", "$union", "$unset", "$remove", "$delete")
"""The operations of a group profile update (``/groups``)."""
MAP_OPERATIONS = ("$set", "$set_once", "$add", "$append", "$union", "$remove")
"""Operations whose value is an object of property names to values."""
