"""An inner transport that reports one of two records alike (the same ``$insert_id``: a retry
sent again) and then raises: its one report answers for one record only, and the sender
reports the other FAILED. Taken as the answer for both, the second record had no report at
all, and the counts were one short."""

from __future__ import annotations

from pathlib import Path

import pytest
from inner_raises_support import config, raising_types, reported
from inner_transports import OWN_REASON, UNLUCKY
from mp_workers import observed_client

pytestmark = pytest.mark.usefixtures(raising_types.__name__)


def test_one_report_of_the_inner_transport_answers_for_one_of_two_alike_records(
    tmp_path: Path,
) -> None:
    client, counter = observed_client(
        config(tmp_path / "out.jsonl", "raising_sink", reports_first="failed")
    )
    # One batch (batch_size 5): the sink reports the UNLUCKY event, then refuses the whole run.
    client.track("u", "Lucky", {"$insert_id": "dup"})
    client.track("u", UNLUCKY, {"$insert_id": "dup"})
    for i in range(3):
        client.track("u", "Lucky", {"$insert_id": f"id-{i}"})

    assert client.close(timeout=30) == []
    assert reported(counter) == ["dup", "dup", "id-0", "id-1", "id-2"]
    own = [report for report in counter.reports if report.reason == OWN_REASON]
    assert [report.message.record["event"] for report in own if report.message] == [UNLUCKY]
    supervisor = client.pipeline.transport("default").supervisor  # type: ignore[attr-defined]
    assert supervisor.counts == {"failed": 5}
    assert (supervisor.unaccounted, supervisor.failure) == (0, None)
