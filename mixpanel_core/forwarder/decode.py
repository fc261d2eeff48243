"""Turning a Kafka record back into a message, or saying why it cannot be (a poison record).

A record is poison when its endpoint header is missing or unknown, its schema version is one this
forwarder does not know, its value is not JSON, or the JSON is not a valid record for its
endpoint. Events without a ``$insert_id`` get one derived from where the record sits in Kafka,
so every redelivery of that record carries the same id and Mixpanel counts it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import attrs

from mixpanel_core.errors import ValidationError
from mixpanel_core.kafka import headers
from mixpanel_core.messages import ENDPOINTS, Event, Message, message_from_record
from mixpanel_core.wire import loads

DECODE_STAGE = "decode"


@attrs.frozen
class Poison:
    """Why a record could not become a message."""

    reason: str
    field: str | None = None


def derived_insert_id(topic: str, partition: int, offset: int) -> str:
    """32 hex characters that only this record position produces (Mixpanel allows up to 36)."""
    position = f"{topic}\x1f{partition}\x1f{offset}".encode()
    return hashlib.blake2b(position, digest_size=16).hexdigest()


def decode(
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    record_headers: Sequence[tuple[str, bytes | None]],
) -> Message | Poison:
    """The message a record carries, or ``Poison`` saying what is wrong with it."""
    endpoint = headers.header(record_headers, headers.ENDPOINT)
    if endpoint is None:
        return Poison(f"no {headers.ENDPOINT!r} header: not written by the kafka transport")
    if endpoint not in ENDPOINTS:
        return Poison(f"unknown endpoint {endpoint!r} in the {headers.ENDPOINT!r} header")
    schema = headers.header(record_headers, headers.SCHEMA)
    if schema is not None and schema != headers.SCHEMA_VERSION:
        return Poison(
            f"schema version {schema!r} is not {headers.SCHEMA_VERSION!r}: written by a newer "
            "mixpanel-core; upgrade the forwarder"
        )
    if value is None:
        return Poison("the record has no value")
    try:
        record = loads(value)
    except ValueError as exc:
        return Poison(f"the value is not JSON: {exc}")
    try:
        message = message_from_record(endpoint, record)
    except ValidationError as exc:
        first = exc.problems[0].field if exc.problems else None
        return Poison(str(exc), first)
    if isinstance(message, Event) and message.insert_id is None:
        return message.with_properties({"$insert_id": derived_insert_id(topic, partition, offset)})
    return message
