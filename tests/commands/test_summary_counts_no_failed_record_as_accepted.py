"""A record that failed is never counted accepted in the summary: not when it failed after the
retry budget, and not when another transport it was routed to had accepted it while this one
still held it. A summary saying "5 accepted" after one of them failed tells the user there is
nothing to resend."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import FAST_RETRIES, events, write_config, write_ndjson
from .test_summary_counts import _summary

pytestmark = pytest.mark.integration

# "mem" accepts at once; "held" sends only when flushed (linger), and gives up on its first
# failure: its request, answered after the flush's bound, fails while the transports close.
HELD_THEN_FAILED = f"""
[transports.mem]
type = "memory"
[transports.held]
type = "buffered_http"
linger = 60.0
flush_timeout = 0.2
exit_timeout = 0.0
retry_budget = 0.0
{FAST_RETRIES}
[[routes]]
transport = ["mem", "held"]
"""


def test_a_send_whose_record_failed_does_not_count_it_accepted(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # One request a record: the first fails, the other four arrive.
    config = write_config(tmp_path, mixpanel_emulator, transport="http", retry_budget=0.0)
    source = write_ndjson(tmp_path / "events.ndjson", events(5))
    mixpanel_emulator.client.fail_next(1, 503)

    assert main(["send", str(source), "--config", str(config)]) == 1

    assert mixpanel_emulator.client.stats()["unique_events"] == 4
    assert "sent 5 records from 1 file(s): 4 accepted," in _summary(capsys.readouterr().err)


def test_a_replay_whose_dead_letter_failed_again_does_not_count_it_accepted(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, transport="http", retry_budget=0.0)
    dead = write_ndjson(
        tmp_path / "dead.jsonl", [{"endpoint": "import", "record": r} for r in events(5)]
    )
    rejected = tmp_path / "still-failing.jsonl"
    mixpanel_emulator.client.fail_next(1, 503)

    arguments = ["--config", str(config), "--file", str(dead), "--rejected-file", str(rejected)]
    assert main(["replay-dead-letters", *arguments]) == 0

    assert mixpanel_emulator.client.stats()["unique_events"] == 4
    summary = _summary(capsys.readouterr().err)
    assert "replayed 5 dead letters: 4 accepted, 1 still failing" in summary


def test_a_record_one_transport_accepted_and_the_other_held_then_failed_is_not_accepted(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, extra=HELD_THEN_FAILED)
    source = write_ndjson(tmp_path / "events.ndjson", events(3))
    mixpanel_emulator.client.set_latency(1.0)
    mixpanel_emulator.client.fail_next(1, 503)

    assert main(["send", str(source), "--config", str(config)]) == 1

    assert mixpanel_emulator.client.stats()["unique_events"] == 0
    assert "sent 3 records from 1 file(s): 0 accepted," in _summary(capsys.readouterr().err)
