"""Full /import requests: 2,000-record batches are accepted whole, every record counted once.

How fast the emulator takes them is measured by benchmarks/bench_http.py, not here.
"""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
import requests

from mixpanel_core.emulator import Emulator

pytestmark = pytest.mark.integration


def test_import_batches_of_2000_records_are_accepted_whole_and_counted_once(
    mixpanel_emulator: Emulator,
) -> None:
    now = time.time()
    batches = [
        [
            {
                "event": "Purchase",
                "properties": {
                    "time": now,
                    "distinct_id": f"user-{i}",
                    "$insert_id": uuid.uuid4().hex,
                    "token": "emulator-token",
                    "item": "coffee",
                    "amount": 5.0,
                    "tags": ["a", "b"],
                },
            }
            for i in range(2000)
        ]
        for _ in range(10)
    ]
    with requests.Session() as session:
        for batch in batches:
            answer = session.post(
                mixpanel_emulator.base_url + "/import",
                data=orjson.dumps(batch),
                params={"strict": "1"},
                headers={"Content-Type": "application/json"},
                auth=("emulator-token", ""),
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["num_records_imported"] == 2000
    sent = [record["properties"]["$insert_id"] for batch in batches for record in batch]
    assert mixpanel_emulator.insert_ids("import") == sent
    stats = mixpanel_emulator.stats()
    assert stats["requests"]["import"] == {"200": 10}
    assert (stats["accepted"]["import"], stats["rejected"]["import"]) == (20_000, 0)
    assert (stats["unique_events"], stats["duplicate_events"]) == (20_000, 0)
