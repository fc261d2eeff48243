"""Turning a Kafka record back into a message, or saying why it cannot be (a poison record).

A record is poison when its endpoint header is missing, not UTF-8 or unknown, its schema version
is not UTF-8 or one this forwarder does not know, its value is not JSON, the JSON is not a
record for its endpoint, or the enabled plugins' ``mixpanel_validate`` hooks find it invalid
(Mixpanel would refuse it) or raise on it.
Events without a ``$insert_id`` get one derived from where the record sits in Kafka, so every
redelivery of that record carries the same id and Mixpanel counts it once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from mixpanel_core.errors import PluginError, Problem, ValidationError
from mixpanel_core.insert_id import derived_insert_id
from mixpanel_core.kafka import headers
from mixpanel_core.messages import ENDPOINTS, Event, Message, message_from_json

DECODE_STAGE = "decode"

Validate = Callable[[Message], Sequence[Problem]]
"""The pipeline's validation (``Pipeline.problems``): what is wrong with a message."""


@attrs.frozen
class Poison:
    """Why a record could not become a message, or why the message it became is refused."""

    reason: str
    field: str | None = None
    message: Message | None = None
    """The decoded message when only the ``mixpanel_validate`` hooks refused it; ``None`` when
    the record could not become a message at all."""


def decode(
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    record_headers: Sequence[tuple[str, bytes | None]],
    validate: Validate | None = None,
) -> Message | Poison:
    """The message a record carries, or ``Poison`` saying what is wrong with it."""
    endpoint = _text_header(record_headers, headers.ENDPOINT)
    if isinstance(endpoint, Poison):
        return endpoint
    if endpoint is None:
        return Poison(f"no {headers.ENDPOINT!r} header: not written by the kafka transport")
    if endpoint not in ENDPOINTS:
        return Poison(f"unknown endpoint {endpoint!r} in the {headers.ENDPOINT!r} header")
    schema = _text_header(record_headers, headers.SCHEMA)
    if isinstance(schema, Poison):
        return schema
    if schema is not None and schema != headers.SCHEMA_VERSION:
        return Poison(
            f"schema version {schema!r} is not {headers.SCHEMA_VERSION!r}: written by a newer "
            "mixpanel-core; upgrade the forwarder"
        )
    if value is None:
        return Poison("the record has no value")
    try:
        message = message_from_json(endpoint, value)
    except ValidationError as exc:
        first = exc.problems[0].field if exc.problems else None
        return Poison(str(exc), first)
    if isinstance(message, Event) and message.insert_id is None:
        message = message.with_properties(
            {"$insert_id": derived_insert_id(topic, partition, offset)}
        )
    try:
        problems = validate(message) if validate is not None else ()
    except PluginError as exc:
        # A validator that raised (already named and redacted by the pipeline): the record is
        # refused as if it had found it invalid, so that on_poison applies. Raised, it stopped
        # the forwarder at this record on every start, and nothing of what was read before it
        # was delivered or committed.
        return Poison(str(exc), None, message)
    if problems:
        return Poison(str(ValidationError(problems, message.kind)), problems[0].field, message)
    return message


_QUOTED_HEADER_BYTES = 40
"""How much of a header that is not UTF-8 a reason quotes."""


def _text_header(
    record_headers: Sequence[tuple[str, bytes | None]], name: str
) -> str | Poison | None:
    """Header ``name`` as text, ``None`` if absent, or ``Poison`` if it is not UTF-8 (a
    missing header and an unreadable one call for different fixes)."""
    value = headers.raw_header(record_headers, name)
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        quoted = value[:_QUOTED_HEADER_BYTES]
        more = "..." if len(value) > _QUOTED_HEADER_BYTES else ""
        return Poison(
            f"the {name!r} header is not UTF-8 ({quoted!r}{more}): not written by the kafka "
            "transport"
        )
