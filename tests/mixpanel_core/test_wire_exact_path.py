"""Which JSON ``wire.loads`` reads exactly with ``json`` (integers orjson would round), and
that this path fails as orjson does: with a ``ValueError``."""

from __future__ import annotations

import pytest

from mixpanel_core import wire


@pytest.mark.parametrize(
    "text",
    [
        '{"id":"3f2a-1234567890-12345678901"}',  # digits joined by hyphens, as in some ids
        '{"span":"2024-01-01--2024-12-31"}',
        '{"n":1234567890123456789}',  # nineteen digits fit 64 bits unsigned
        '{"n":-922337203685477580}',  # a minus and eighteen
        # Runs of twenty digits inside strings: hex ids (uuid4().hex), where most batches of
        # 2,000 records had one, and a minus in a name.
        '{"$insert_id":"12345678901234567890abcdef012345"}',
        '{"$insert_id":"abcdef12345678901234567890012345"}',
        '{"id":"user-12345678901234567890","v":1.12345678901234567890}',
    ],
)
def test_text_that_orjson_reads_exactly_does_not_take_the_slow_path(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hyphen-joined digits sent most 2,000-record batches of UUID-like ids to ``json``: twice
    # as slow for the emulator, the forwarder and the multiprocessing sender.
    def refuse(raw: bytes) -> object:
        raise AssertionError(f"slow path taken for {raw!r}")

    monkeypatch.setattr(wire, "_json_loads", refuse)
    assert isinstance(wire.loads(text), dict)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"n":-9223372036854775809}', -(2**63) - 1),
        ('{"n":-9999999999999999999}', -9999999999999999999),
        ('{"n":18446744073709551616}', 2**64),
        ('{"n":[1,-12345678901234567890]}', [1, -12345678901234567890]),
        # After every byte a number may follow, and at the start of the text.
        ('{"n": 18446744073709551616}', 2**64),
        ('{"n":\t-9223372036854775809}', -(2**63) - 1),
        ('{"n":[\r\n18446744073709551616]}', [2**64]),
        ('{"n":{"m":[ 2,\n-9223372036854775809]}}', {"m": [2, -(2**63) - 1]}),
    ],
)
def test_integers_beyond_64_bits_are_read_exactly(text: str, value: object) -> None:
    assert wire.loads(text)["n"] == value


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**30])
def test_a_long_integer_that_is_the_whole_text_is_read_exactly(value: int) -> None:
    assert wire.loads(str(value)) == value
    assert wire.loads(f" {value} ") == value


@pytest.mark.parametrize("extra", ['"n":12345678901234567890', '"s":"\\udcff"'])
def test_json_too_deep_for_the_exact_reader_is_a_value_error(extra: str) -> None:
    # ``json`` raised RecursionError, which no reader catches: the forwarder stopped on such a
    # record at every start instead of dead-lettering it.
    text = "{" + extra + ',"d":' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(ValueError):  # noqa: PT011 (the readers catch exactly this)
        wire.loads(text)
