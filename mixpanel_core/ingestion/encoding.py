"""Request bodies: how records are framed for each endpoint, and their exact sizes.

Each record is encoded to JSON once, when it is taken. Form-encoded bodies are percent-encoded
a whole batch at a time (far cheaper than record by record), so for them the size a batcher
counts is the JSON size; the client measures the real body and splits a batch whose encoded
body exceeds the budget before sending it.

The client takes encoded records as ``(message, data)`` pairs (``EncodedPair``): an
``Encoded`` is one, with names. The buffered sender pairs each batch's records as plain
tuples, which cost a fraction of named ones to build, and gives ``None`` for a message it did
not keep: only the JSON is sent, and the message is rebuilt from it (``message_in``) for the
rare record that needs one (a report, a dead letter, ``/import`` credentials).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Literal, NamedTuple

import attrs

from mixpanel_core.errors import ValidationError
from mixpanel_core.ingestion.formencode import needs_quoting, quote
from mixpanel_core.messages import Endpoint, Message, message_from_json

FORM_FIELDS = b"&verbose=1&ip=0"
"""Sent after ``data=`` as the official SDK does: verbose answers, no IP geolocation."""
VERBOSE_ONLY = b"&verbose=1"
"""``FORM_FIELDS`` for an endpoint whose URL's query says ``ip`` itself (``url_query``)."""


class Encoded(NamedTuple):
    """A message and its record as it appears inside a request body."""

    message: Message
    data: bytes


EncodedPair = tuple[Message | None, bytes]
"""``(message, data)``: what the client takes wherever it takes encoded records; ``message``
is ``None`` when the sender kept only the JSON (see ``message_in``)."""

# The two halves of an ``EncodedPair``: mapped over a whole batch, they read each one in C.
message_of = operator.itemgetter(0)
data_of = operator.itemgetter(1)


def message_in(endpoint: Endpoint, item: EncodedPair) -> Message | None:
    """The pair's message; rebuilt from its JSON when the sender did not keep it.

    ``None`` only when that JSON is not a record of ``endpoint`` (no producer of ours writes
    one); a report then says what happened to it without it.
    """
    message, data = item
    if message is not None:
        return message
    try:
        return message_from_json(endpoint, data)
    except ValidationError:
        return None


@attrs.frozen
class WireFormat:
    """How one endpoint's body is framed: ``prefix + data (separator data)* + suffix``."""

    content_type: str
    prefix: bytes
    separator: bytes
    suffix: bytes
    form_encoded: bool
    fields: bytes = FORM_FIELDS
    """Sent after a form's ``data=`` (``FORM_FIELDS``, or ``VERBOSE_ONLY``)."""

    def encode_messages(self, messages: Sequence[Message]) -> list[Encoded]:
        """Each message with its record as it appears inside the body (its own JSON)."""
        return [Encoded(m, m.json()) for m in messages]

    def body_size(self, data_bytes: int, count: int) -> int:
        """Size of a body of ``count`` records of ``data_bytes`` in total (JSON size for forms)."""
        framing = len(self.prefix) + len(self.suffix)
        return framing + data_bytes + len(self.separator) * max(0, count - 1)

    def body(self, items: Sequence[EncodedPair]) -> bytes:
        head, tail = self.prefix, self.suffix
        if self.form_encoded:
            head, tail = b"data=" + quote(head), quote(tail) + self.fields
        # The framing goes onto the first and last records, so the one join that builds
        # the body is the only copy of the records (up to 2 MiB) it makes.
        records = list(map(data_of, items)) or [b""]
        records[0] = head + records[0]
        records[-1] = records[-1] + tail
        body = self.separator.join(records)
        if self.form_encoded and needs_quoting(body, len(head), len(body) - len(tail)):
            # Rare for JSON: something must be escaped, so the records are quoted apart.
            body = head + quote(body[len(head) : len(body) - len(tail)]) + tail
        return body


FORM = WireFormat("application/x-www-form-urlencoded", b"[", b",", b"]", True)
JSON_ARRAY = WireFormat("application/json", b"[", b",", b"]", False)
NDJSON = WireFormat("application/x-ndjson", b"", b"\n", b"\n", False)


def wire_format(
    endpoint: str, import_format: Literal["json", "ndjson"] = "json", url_sets_ip: bool = False
) -> WireFormat:
    """The body format of ``endpoint``: form-encoded ``data=`` except for ``/import``;
    ``url_sets_ip``: the endpoint's URL says ``ip`` in its query (``url_query``), so the form
    does not."""
    if endpoint != "import":
        return attrs.evolve(FORM, fields=VERBOSE_ONLY) if url_sets_ip else FORM
    return NDJSON if import_format == "ndjson" else JSON_ARRAY
