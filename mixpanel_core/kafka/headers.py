"""The record headers the ``kafka`` transport writes and the forwarder reads.

Header values are UTF-8 bytes. ``SCHEMA_VERSION`` changes only if the value's meaning changes;
a forwarder refuses (dead-letters) records of a schema it does not know.
"""

from __future__ import annotations

from collections.abc import Iterable

ENDPOINT = "mixpanel-endpoint"
SCHEMA = "mixpanel-schema-version"
LIBRARY = "mixpanel-library-version"

SCHEMA_VERSION = "1"

Headers = list[tuple[str, bytes]]


def header(headers: Iterable[tuple[str, bytes | None]], name: str) -> str | None:
    """The first value of header ``name`` as text, or ``None`` if absent or not UTF-8."""
    value = raw_header(headers, name)
    if value is None:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


def raw_header(headers: Iterable[tuple[str, bytes | None]], name: str) -> bytes | None:
    """The first value of header ``name`` as bytes, or ``None`` if absent.

    For a reader that must tell a missing header from one that is not UTF-8.
    """
    for key, value in headers:
        if key == name and value is not None:
            return value
    return None
