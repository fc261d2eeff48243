"""Request bodies: how records are framed for each endpoint, and their exact sizes.

Each record is encoded once, in the form it takes inside the body (JSON for ``/import``,
percent-encoded JSON for the form-encoded endpoints), so a batch's body size is known
exactly before it is built and a batch never crosses the byte budget by surprise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import attrs

from mixpanel_core import wire
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.ingestion.formencode import quote
from mixpanel_core.messages import Message

FORM_FIELDS = b"&verbose=1&ip=0"
"""Sent after ``data=`` as the official SDK does: verbose answers, no IP geolocation."""


class Encoded(NamedTuple):
    """A message and its record as it appears inside a request body."""

    message: Message
    data: bytes


@attrs.frozen
class WireFormat:
    """How one endpoint's body is framed: ``prefix + data (separator data)* + suffix``."""

    content_type: str
    prefix: bytes
    separator: bytes
    suffix: bytes
    form_encoded: bool

    def encode(self, record: FrozenDict) -> bytes:
        """One record as it appears inside the body."""
        data = wire.dumps(record)
        return quote(data) if self.form_encoded else data

    def encode_messages(self, messages: Sequence[Message]) -> list[Encoded]:
        return [Encoded(m, self.encode(m.record)) for m in messages]

    def body_size(self, data_bytes: int, count: int) -> int:
        """Exact size of a body holding ``count`` records of ``data_bytes`` bytes in total."""
        framing = len(self.prefix) + len(self.suffix)
        return framing + data_bytes + len(self.separator) * max(0, count - 1)

    def body(self, items: Sequence[Encoded]) -> bytes:
        return self.prefix + self.separator.join([item.data for item in items]) + self.suffix


FORM = WireFormat(
    "application/x-www-form-urlencoded", b"data=%5B", b"%2C", b"%5D" + FORM_FIELDS, True
)
JSON_ARRAY = WireFormat("application/json", b"[", b",", b"]", False)
NDJSON = WireFormat("application/x-ndjson", b"", b"\n", b"\n", False)


def wire_format(endpoint: str, import_format: Literal["json", "ndjson"] = "json") -> WireFormat:
    """The body format of ``endpoint``: form-encoded ``data=`` except for ``/import``."""
    if endpoint != "import":
        return FORM
    return NDJSON if import_format == "ndjson" else JSON_ARRAY
