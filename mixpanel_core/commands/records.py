"""From a parsed input record to a message: which endpoint, a stable ``$insert_id``, the token.

A record goes to ``--endpoint`` when one is given; otherwise its shape says where: ``event``
with ``properties`` is an event for ``/import``, ``$group_key`` a group update for ``/groups``,
``$distinct_id`` a user profile update for ``/engage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mixpanel_core.errors import Problem, ValidationError
from mixpanel_core.insert_id import derived_insert_id
from mixpanel_core.messages import Endpoint, Message, message_from_record

EVENT_ENDPOINTS = ("track", "import")


def infer_endpoint(record: Mapping[str, Any]) -> Endpoint | None:
    """Where a record of this shape goes, or ``None`` when its shape says nothing."""
    if "event" in record and "properties" in record:
        return "import"
    if "$group_key" in record:
        return "groups"
    if "$distinct_id" in record:
        return "engage"
    return None


def build_message(
    record: object,
    endpoint: Endpoint | None,
    natural_key: tuple[object, ...],
    token: str | None = None,
) -> Message:
    """The message for ``record``; raises ``ValidationError`` naming the field when it cannot be.

    An event without ``$insert_id`` gets one derived from ``natural_key`` (where the record sits
    in its source), so sending it again is deduplicated by Mixpanel. A record without the
    project token gets ``token``, when one is configured. ``record`` (freshly parsed, owned by
    the caller) is completed in place before it is frozen.
    """
    if not isinstance(record, dict):
        raise ValidationError([Problem("record", "must be a JSON object")])
    target = endpoint or infer_endpoint(record)
    if target is None:
        raise ValidationError(
            [
                Problem(
                    "record",
                    "cannot tell the endpoint: an event needs 'event' and 'properties', a "
                    "profile update '$distinct_id', a group update '$group_key' (or pass "
                    "--endpoint)",
                )
            ]
        )
    if target in EVENT_ENDPOINTS:
        properties = record.get("properties")
        if isinstance(properties, dict):
            if "$insert_id" not in properties:
                properties["$insert_id"] = derived_insert_id(*natural_key)
            if token and "token" not in properties:
                properties["token"] = token
    elif token and "$token" not in record:
        record["$token"] = token
    return message_from_record(target, record)


def problem_field(error: ValidationError) -> str | None:
    """The field of the first problem, for the rejected file's ``field``."""
    return error.problems[0].field if error.problems else None
