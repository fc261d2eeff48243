"""A form-encoded body even one byte over ``max_batch_bytes`` is split before it is sent.

Batches are cut on their records' JSON size; the body sent also carries ``data=``, the
fields after it and the escapes, so the client measures it again before sending. The test
of that check overshot the budget by kilobytes: a mutant letting a body a few bytes over
the budget through survived every test, and such a body was sent whole for the server to
refuse with a 413 (one refused request more, all its bytes sent for nothing).
"""

from __future__ import annotations

import attrs
import pytest

from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient, wire_format

from .conftest import FAST, RecordingWait, event, settings_for

pytestmark = pytest.mark.integration


def test_a_body_one_byte_over_the_budget_is_split_before_it_is_sent() -> None:
    messages = [event(page="home page") for _ in range(2)]
    fmt = wire_format("track")
    budget = len(fmt.body(fmt.encode_messages(messages))) - 1
    # One batch by the JSON size: only the body as sent is over the budget.
    assert fmt.body_size(sum(len(m.json()) for m in messages), len(messages)) <= budget

    with Emulator(max_body_bytes=budget) as emulator:
        options = attrs.evolve(FAST, max_batch_bytes=budget)
        client = IngestionClient(settings_for(emulator), options)
        result = client.send_batch("track", messages, wait=RecordingWait())
        client.close()

        assert result.ok
        requests = emulator.client.stats()["requests"]["track"]
        assert requests == {"200": 2}, "the body over the budget was sent"
