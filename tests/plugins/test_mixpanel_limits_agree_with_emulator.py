"""The client's validator and the emulator's checks take and refuse the same ids.

``mixpanel_core.api_limits`` is one source for both, but each applies it in its own code: a
record the client passes and the emulator refuses goes out and comes back REJECTED (through
Kafka, a dead letter) instead of being refused at the call, and one the client refuses and the
emulator takes is an error the user cannot get past.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from mixpanel_core import Mixpanel, ValidationError
from mixpanel_core.emulator.validation import (
    IMPORT_RULES,
    validate_event,
    validate_merge,
)
from mixpanel_core.testing import MemoryTransport

TOKEN = "emulator-token"
IDS: list[Any] = [
    *(123, 0, -1, 1.5, True, None, "", " ", "u-1", "null", "-", ["u"], {"u": 1}),
    "anonymous" + " " * 30,  # a placeholder, padded past the longest one
    " " * 20 + "undefined" + " " * 20,
    "u" * 40,
]
INSERT_IDS: list[Any] = ["-", "---", "a-b", "ab", "", "a b", "é", "x" * 36, "x" * 37, "a_b", 7]


def _client_refuses(call: Any) -> bool:
    client = Mixpanel(TOKEN, MemoryTransport())
    try:
        call(client)
    except ValidationError:
        return True
    return False


@pytest.mark.parametrize("value", IDS, ids=repr)
def test_merge_ids(value: Any) -> None:
    record = {"event": "$merge", "properties": {"$distinct_ids": [value, "u-2"], "token": TOKEN}}
    emulator_refuses = bool(validate_merge(record))
    assert _client_refuses(lambda mp: mp.merge(None, value, "u-2")) == emulator_refuses


@pytest.mark.parametrize("value", INSERT_IDS, ids=repr)
def test_insert_ids(value: Any) -> None:
    now = time.time()
    record = {
        "event": "E",
        "properties": {"distinct_id": "u-1", "time": int(now) - 60, "$insert_id": value},
    }
    emulator_refuses = bool(validate_event(record, IMPORT_RULES, now=now, tokens=frozenset()))
    properties = {"$insert_id": value}
    assert (
        _client_refuses(lambda mp: mp.import_data(None, "u-1", "E", int(now) - 60, properties))
        == emulator_refuses
    )


@pytest.mark.parametrize("value", [v for v in IDS if type(v) is not float], ids=repr)
def test_distinct_ids_of_imported_events(value: Any) -> None:
    """(A float id is refused by the client alone, on purpose: docs/migrating.md.)"""
    now = time.time()
    properties = {"distinct_id": value, "time": int(now) - 60, "$insert_id": "i-1"}
    record = {"event": "E", "properties": properties}
    emulator_refuses = bool(validate_event(record, IMPORT_RULES, now=now, tokens=frozenset()))
    client_refuses = _client_refuses(
        lambda mp: mp.import_data(None, value, "E", int(now) - 60, {"$insert_id": "i-1"})
    )
    assert client_refuses == emulator_refuses
