"""A form-encoded body that percent-encoding makes larger than ``max_batch_bytes`` is split
before it is sent, not sent for the server to refuse with a 413.

Batches are cut on the records' JSON size; characters such as ``&`` take three bytes once
quoted. Written from a mutation audit: sending such a body whole failed no test (the 413
that followed split it anyway, one refused request later, with the whole batch's bytes
sent for nothing).
"""

from __future__ import annotations

import attrs
import pytest

from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient

from .conftest import FAST, RecordingWait, event, settings_for

pytestmark = pytest.mark.integration

BUDGET = 4_000


def test_a_body_quoting_makes_too_large_is_split_before_it_is_sent() -> None:
    with Emulator(max_body_bytes=BUDGET) as emulator:
        client = IngestionClient(settings_for(emulator), attrs.evolve(FAST, max_batch_bytes=BUDGET))
        messages = [event(q="&" * 300) for _ in range(8)]  # ~3.6 KB of JSON, ~8.5 KB quoted
        assert sum(len(m.json()) for m in messages) < BUDGET  # one batch by its JSON size
        result = client.send_batch("track", messages, wait=RecordingWait())
        client.close()
        assert result.ok
        assert sorted(emulator.client.insert_ids("track")) == sorted(m.insert_id for m in messages)
        requests = emulator.client.stats()["requests"]["track"]
        assert requests == {"200": requests["200"]}, "a body over the budget was sent"
