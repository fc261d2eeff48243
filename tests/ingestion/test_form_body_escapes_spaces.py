"""A space inside a record is percent-encoded in a form-encoded body, also when nothing
else in the body needs escaping.

``quote`` escapes spaces as a separator, before its scan for unusual bytes, and that scan
counts only controls and non-ASCII. A mutant leaving the space out of the separators
survived every test: the random texts of the round-trip test always held a control or a
separator as well, which sends the whole text through the escaping that catches spaces too.
A raw space is not valid in ``application/x-www-form-urlencoded``: a strict parser or a proxy
on the way may refuse the request, or cut the value at the space.
"""

from __future__ import annotations

import urllib.parse

import orjson
import pytest

from mixpanel_core.ingestion import wire_format
from mixpanel_core.ingestion.formencode import needs_quoting, quote

from .conftest import event


@pytest.mark.parametrize("text", [b" ", b"sign up", b'{"event":"sign up"}', b"a b c"])
def test_quote_escapes_a_space_with_nothing_else_to_escape(text: bytes) -> None:
    quoted = quote(text)
    assert b" " not in quoted
    assert quoted == text.replace(b" ", b"%20")
    assert needs_quoting(text)


def test_a_track_body_carries_no_raw_space() -> None:
    """Compact JSON has no spaces but those inside its strings: a property value with one."""
    message = event(page="home page")
    fmt = wire_format("track")
    body = fmt.body(fmt.encode_messages([message]))

    assert b" " not in body
    fields = urllib.parse.parse_qsl(body.decode("ascii"), strict_parsing=True)
    assert orjson.loads(dict(fields)["data"]) == [orjson.loads(message.json())]
