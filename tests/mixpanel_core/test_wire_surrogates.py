"""``wire``: strings the official SDK sends that orjson refuses, and failures said as they are."""

from __future__ import annotations

import json

import pytest

from mixpanel_core import wire
from mixpanel_core.errors import NotJSONError
from mixpanel_core.frozen import FrozenDict
from mixpanel_core.wire import dumps, dumps_str, loads

# What os.fsdecode gives for a file name byte that is not UTF-8 (surrogateescape).
FILE_NAME = "file\udcff.txt"


def test_a_lone_surrogate_goes_out_as_the_json_escape_the_official_sdk_sends() -> None:
    record = FrozenDict(event="Upload", properties=FrozenDict(name=FILE_NAME, city="Zürich"))
    data = dumps(record)
    assert b'"name":"file\\udcff.txt"' in data  # json.dumps's escape, lowercase as it writes
    assert "Zürich".encode() in data  # the rest stays UTF-8
    assert loads(data) == record
    assert json.loads(data) == json.loads(json.dumps(record))
    assert dumps_str(record) == data.decode()


def test_a_lone_surrogate_beside_an_integer_beyond_64_bits_is_written_too() -> None:
    record = {"properties": {"name": FILE_NAME, "n": 2**70}}
    assert loads(dumps(record)) == record


def test_the_official_text_is_json_dumps_with_the_sdks_separators() -> None:
    record = FrozenDict(
        event="E",
        properties=FrozenDict(name=FILE_NAME, city="Zoë", tiny=1e-7, big=2**70, tags=("a",)),
    )
    assert wire.dumps_official(record) == json.dumps(record, separators=(",", ":"))
    assert "\\u00eb" in wire.dumps_official(record)
    assert "1e-07" in wire.dumps_official(record)


def test_official_text_with_a_surrogate_escape_is_read_as_json_reads_it() -> None:
    text = json.dumps({"event": "E", "properties": {"name": FILE_NAME}})
    assert loads(text) == {"event": "E", "properties": {"name": FILE_NAME}}
    assert loads(text.encode()) == json.loads(text)
    # A surrogate pair escape is one character, on either path.
    assert loads('["\\ud83d\\ude00"]') == ["\U0001f600"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        # Still refused: what orjson refuses besides a surrogate escape keeps its words.
        (b'["file\\udcff.txt",', "Expecting value"),
        (b"[1,", "unexpected end of data"),
        # Surrogates encoded in the bytes themselves are no UTF-8, whatever json would take.
        (b'["\\udcff", "\xed\xb3\xbf"]', "can't decode"),
        (b'["\\udcff", NaN]', "NaN is not valid JSON"),
        (b'["\\udcff", 1e400]', "1e400 is too large"),
        (b"[12345678901234567890123, 1e400]", "1e400 is too large"),
    ],
)
def test_the_json_fallback_refuses_what_orjson_refuses(data: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        loads(data)


def test_negative_integers_below_64_bits_with_nineteen_digits_are_read_back_exactly() -> None:
    # -2**63 - 1 has nineteen digits: orjson alone reads it as a float, rounded.
    for value in (-(2**63) - 1, -9_999_999_999_999_999_999):
        assert loads(dumps({"n": value})) == {"n": value}
    assert loads(b"[-9223372036854775808]") == [-(2**63)]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"properties": {"name": FILE_NAME, "n": 10**5000}},
            "properties.n: an integer of more than 4300 digits cannot be written",
        ),
        (
            {"properties": {"tags": [1, {2, 3}]}},
            r"properties.tags\[1\]: a set cannot be written as JSON",
        ),
        ({"properties": {(1, 2): "x"}}, "properties: a key of type tuple cannot be written"),
        (
            {"properties": {"n": 2**70, "x": float("nan")}},
            "properties.x: nan cannot be written: JSON has no NaN or infinities",
        ),
    ],
)
def test_every_encoding_failure_names_the_field_and_what_it_really_is(
    record: dict[str, object], message: str
) -> None:
    for encode in (dumps, wire.dumps_official):
        with pytest.raises(NotJSONError, match=message):
            encode(record)  # type: ignore[arg-type]


def test_a_surrogate_is_never_reported_as_a_long_integer() -> None:
    with pytest.raises(NotJSONError) as caught:
        dumps({"name": FILE_NAME, "tags": {1}})
    assert str(caught.value) == "invalid message: tags: a set cannot be written as JSON"
