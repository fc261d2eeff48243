"""The emulator's fast form decoder reads exactly what ``urllib.parse`` would."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
import pytest

from mixpanel_core.emulator.payload import PayloadError, _form_fields, _form_payload


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


# Answers of the emulator before form values were kept as bytes (recorded from it): the
# usual ASCII data= is no longer decoded to text, and every body still reads the same.
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'data=[{"a":1}]&verbose=1', ([{"a": 1}], {"verbose": "1"})),
        (b"data=%5B%7B%22a%22%3A1%7D%5D", ([{"a": 1}], {})),
        (b'data= [{"a":1}]', ([{"a": 1}], {})),
        (b'data=+[{"a":1}]', ([{"a": 1}], {})),
        (b'data=["\xc3\xa9"]', (["é"], {})),
        (b"data=%7B%22e%22%3A%22%C3%A9%22%7D", ([{"e": "é"}], {})),
        (b'data=["\\u00e9"]', (["é"], {})),
        (b"data=eyJhIjoxfQ==", ([{"a": 1}], {})),
        (b'data=[]&data={"b":2}', ([{"b": 2}], {})),
        (b'da%74a={"c":3}', ([{"c": 3}], {})),
        (b"&&data=[5]&&", ([5], {})),
        (b"data=[1]&=x&y", ([1], {"": "x", "y": ""})),
        (b'data=["a b"]&x=1', (["a b"], {"x": "1"})),
        (b'data=\x1c[{"a":1}]', "body is not valid JSON: unexpected character"),
        (b"data=%1C%5B%5D", "body is not valid JSON: unexpected character"),
        (b"data=[1,2", "body is not valid JSON: unexpected end of data: line 1 column 5"),
        (b"data=e30", "'data' is neither JSON nor base64-encoded JSON"),
        (b"verbose=1", "no 'data' field"),
        (b"", "no 'data' field"),
        (b'data=["\xff"]', "form body is not UTF-8"),
        (b"data=%5B%22%FF%22%5D", "form body is not UTF-8"),
        (b'data={"d":4}&x=\xff', "form body is not UTF-8"),
        (b'x=\xff&data={"d":4}', "form body is not UTF-8"),
        # The first failing field decides, the value of a pair before its name.
        (b"data=\xff&x=%zz", "form body is not UTF-8"),
        (b"x=%zz&data=\xff", "malformed percent-encoding"),
        (b"\xff=%zz&data=[1]", "malformed percent-encoding"),
        (b"%zz=\xff&data=[1]", "form body is not UTF-8"),
    ],
)
def test_form_payloads_read_as_before(body: bytes, expected: Any) -> None:
    if isinstance(expected, str):
        with pytest.raises(PayloadError) as caught:
            _form_payload(body)
        assert caught.value.status == 400
        assert caught.value.message.startswith(expected)
        return
    payload = _form_payload(body)
    assert (payload.records, payload.params) == expected
    # The text the records were read from, for the checks that read it whole.
    assert payload.text is not None
    parsed = orjson.loads(payload.text)
    assert (parsed if isinstance(parsed, list) else [parsed]) == payload.records
