"""A record Mixpanel refuses, routed to a synchronous transport and another one, is kept in the
rejected file like any refused record, and the run goes on to the records after it.

The synchronous transport refuses it by raising, so the pipeline raises ``PartialSendError``
(the other transport took it); the commands let that stop the run, with nothing in the
rejected file and the checkpoint before the record: every rerun stopped at it again, and the
records after it were never sent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator
from mixpanel_core.testing import install_distribution

from .conftest import FAST_RETRIES, write_config, write_ndjson

pytestmark = pytest.mark.integration

# "now" refuses at once by raising; "later" takes every record and sends it when flushed.
TWO_TRANSPORTS = f"""
[transports.now]
type = "http"
{FAST_RETRIES}
[transports.later]
type = "buffered_http"
exit_timeout = 0.0
{FAST_RETRIES}
[[routes]]
transport = ["now", "later"]
"""

REFUSED = {"event": "E", "properties": {"distinct_id": "u-1", "time": 1000, "$insert_id": "a"}}
VALID = {"event": "E", "properties": {"distinct_id": "u-2", "time": 1.79e9, "$insert_id": "b"}}


def command(kind: str, tmp_path: Path) -> list[str]:
    source = write_ndjson(tmp_path / "in.ndjson", [REFUSED, VALID])
    if kind == "send":
        return ["send", str(source), "--checkpoint", str(tmp_path / "send.checkpoint")]
    letters = [{"endpoint": "import", "record": r} for r in (REFUSED, VALID)]
    return ["replay-dead-letters", "--file", str(write_ndjson(tmp_path / "dead.jsonl", letters))]


@pytest.mark.parametrize("kind", ["send", "replay-dead-letters"])
def test_the_refused_record_is_kept_and_the_next_one_sent(
    kind: str, tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    # No plugins: only Mixpanel (the emulator) finds the time before 1971.
    config = write_config(tmp_path, mixpanel_emulator, plugins=[], extra=TWO_TRANSPORTS)
    rejected = tmp_path / "rejected.jsonl"
    arguments = [*command(kind, tmp_path), "--config", str(config)]

    code = main([*arguments, "--rejected-file", str(rejected)])

    assert code == 0
    lines = [orjson.loads(line) for line in rejected.read_bytes().splitlines()]
    assert [(line["status"], line["record"]["properties"]["$insert_id"]) for line in lines] == [
        ("rejected", "a")
    ]
    # Both transports delivered the valid record (the same $insert_id: Mixpanel counts it once).
    assert mixpanel_emulator.client.insert_ids("import") == ["b", "b"]


SILENT_REFUSER = """
from mixpanel_core.errors import DeliveryError


class SilentRefuser:
    \"\"\"Raises DeliveryError without reporting the message: against the contract.\"\"\"

    @classmethod
    def from_config(cls, options, context):
        return cls()

    def send(self, message):
        raise DeliveryError("refused without a report")

    def flush(self, timeout=None):
        return ()

    def close(self, timeout=None):
        return ()
"""


def test_a_refusal_without_a_report_beside_an_acceptance_stops_the_run(
    tmp_path: Path, mixpanel_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beside a transport that accepted the record, a refusal nobody reported would go
    unnoticed (the record counts as reported by either): the run stops at it instead, as it
    does for that transport alone, and a rerun meets it again."""
    install_distribution(
        tmp_path / "site",
        "silent-refuser",
        {"mixpanel_core.transports": {"silent": "silent_refuser:SilentRefuser"}},
        {"silent_refuser": SILENT_REFUSER},
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "silent_refuser", raising=False)
    routes = '[transports.now]\ntype = "http"\n[transports.odd]\ntype = "silent"\n'
    routes += '[[routes]]\ntransport = ["now", "odd"]\n'
    config = write_config(tmp_path, mixpanel_emulator, plugins=[], extra=routes)
    checkpoint = tmp_path / "send.checkpoint"
    source = write_ndjson(tmp_path / "in.ndjson", [VALID])

    code = main(["send", str(source), "--checkpoint", str(checkpoint), "--config", str(config)])

    assert code == 1
    assert not checkpoint.exists()
    assert mixpanel_emulator.client.insert_ids("import") == ["b"]  # "now" delivered it
