"""What a 413 taught holds for a body exactly as large as the one refused.

Halves of records of one size are bodies of one size: once one pair is refused, each other
pair is split without being sent. Written from a mutation audit: splitting only bodies
larger than the refused one failed no test, and every pair was sent to be refused again.
"""

from __future__ import annotations

import time

import attrs
import pytest

from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient

from .conftest import FAST, RecordingWait, event, settings_for

pytestmark = pytest.mark.integration


def test_pairs_as_large_as_a_refused_pair_are_split_without_being_sent() -> None:
    at = int(time.time()) - 60  # an integer: every record's JSON is the same size
    messages = [event(time=at, padding="p" * 1_000) for _ in range(8)]
    size = len(messages[0].json())
    assert {len(m.json()) for m in messages} == {size}
    # A record fits, two do not: the 8, a 4 and a 2 are refused, then only singles are sent.
    with Emulator(max_body_bytes=size + size // 2) as emulator:
        client = IngestionClient(settings_for(emulator), attrs.evolve(FAST, max_batch_bytes=10**6))
        result = client.send_batch("track", messages, wait=RecordingWait())
        client.close()
        assert result.ok
        assert sorted(emulator.client.insert_ids("track")) == sorted(m.insert_id for m in messages)
        assert emulator.client.stats()["requests"]["track"] == {"413": 3, "200": 8}
