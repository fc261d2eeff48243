"""A record routed to two transports, refused by one (REJECTED: sending again cannot help) and
failed by the other (FAILED after its retry budget: sending again may), is not settled: the run
stops with the chunk unconfirmed, so the rerun sends it again. Taken as rejected, it would be
written to the rejected file and the checkpoint moved past it, and the transport that failed
it would never be given it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.commands.errors import CommandError
from mixpanel_core.emulator import Emulator

from .conftest import FAST_RETRIES, write_config, write_ndjson
from .test_send import backfill

pytestmark = pytest.mark.integration

# "now" sends each record as it is submitted; "later" only when flushed (linger).
TWO_TRANSPORTS = f"""
[transports.now]
type = "http"
retry_budget = 0.0
{FAST_RETRIES}
[transports.later]
type = "buffered_http"
linger = 60.0
exit_timeout = 0.0
retry_budget = 0.0
{FAST_RETRIES}
[[routes]]
transport = ["now", "later"]
"""


def test_a_record_one_transport_rejected_and_the_other_failed_stops_the_run(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    # No plugins: Mixpanel (the emulator) refuses the time, as "now" finds out at once.
    config = write_config(tmp_path, mixpanel_emulator, plugins=[], extra=TWO_TRANSPORTS)
    record = {"event": "E", "properties": {"distinct_id": "u-1", "time": 1000, "$insert_id": "a"}}
    source = write_ndjson(tmp_path / "in.ndjson", [record])
    checkpoint, rejected = tmp_path / "send.checkpoint", tmp_path / "rejected.jsonl"
    run = backfill(config, [source], checkpoint=checkpoint, rejected_file=rejected)
    # Once "now" has had its answer: the request "later" makes when flushed fails.
    run.after_record = lambda path, index: mixpanel_emulator.client.fail_next(1, 503)

    with pytest.raises(CommandError, match=r"1 record\(s\) of .* were not delivered"):
        run.run()

    assert mixpanel_emulator.client.stats()["requests"]["import"] == {"400": 1, "503": 1}
    assert not checkpoint.exists()
    assert rejected.read_bytes() == b""
