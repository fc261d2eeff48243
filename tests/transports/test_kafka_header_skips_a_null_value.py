"""Kafka lets a record header have no value (null). Reading the ``kafka`` transport's headers, a
null-valued header counts as absent: the first header of that name with a value is the one read,
so a record carrying a null ``mixpanel-endpoint`` before its real one is not taken for a record
without an endpoint (and dead-lettered by the forwarder)."""

from __future__ import annotations

from mixpanel_core.kafka import headers


def test_the_first_header_with_a_value_is_read_past_a_null_one() -> None:
    record_headers: list[tuple[str, bytes | None]] = [
        (headers.ENDPOINT, None),
        (headers.ENDPOINT, b"track"),
        (headers.SCHEMA, b"1"),
    ]
    assert headers.raw_header(record_headers, headers.ENDPOINT) == b"track"
    assert headers.header(record_headers, headers.ENDPOINT) == "track"


def test_a_header_with_only_a_null_value_is_absent() -> None:
    assert headers.header([(headers.ENDPOINT, None)], headers.ENDPOINT) is None
