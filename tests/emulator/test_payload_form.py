"""The emulator's fast form decoder reads exactly what ``urllib.parse`` would."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest

from mixpanel_core.emulator.payload import PayloadError, _form_fields


@pytest.mark.parametrize(
    "fields",
    [
        {"data": '[{"event":"E","properties":{"distinct_id":"ü é \\\\n %41 +"}}]', "verbose": "1"},
        {"data": "", "ip": "0", "a b": "c+d&e=f"},
        {"data": "back\\\\slash \\\\x41 %25"},
    ],
)
def test_form_fields_match_the_standard_library(fields: dict[str, str]) -> None:
    body = urlencode(fields).encode()
    assert _form_fields(body) == dict(parse_qsl(body.decode(), keep_blank_values=True))


@pytest.mark.parametrize(
    "body", [b"", b"&", b"a=1&&b=2", b"data=x&", b"&data=y", b"a", b"a&b=&=c", b"a=1&a=2"]
)
def test_empty_and_repeated_pairs_read_as_the_standard_library_reads_them(body: bytes) -> None:
    assert _form_fields(body) == dict(parse_qsl(body.decode(), keep_blank_values=True))


def test_malformed_percent_escape_is_a_400() -> None:
    with pytest.raises(PayloadError) as caught:
        _form_fields(b"data=%zz")
    assert caught.value.status == 400
