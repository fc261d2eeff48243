"""The summary counts each record once, also when the reports of one record arrive in two
outcomes, or carry copies of it:

- a record one transport still held when flushing stopped (its other transport had accepted
  it) was counted accepted at once; the held copy, delivered while the transports closed, could
  no longer be traced and was counted again ("6 accepted" for 3 records);
- the reports of a multiprocessing_queue transport carry copies decoded in the owner: a profile
  update (no ``$insert_id``) routed there and to a second transport was counted once per
  report ("10 accepted" for 5).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpanel_core.cli import main
from mixpanel_core.emulator import Emulator

from .conftest import TOKEN, events, write_config, write_ndjson
from .test_summary_counts import _summary

pytestmark = pytest.mark.integration

# "mem" accepts at once; "held" keeps the batch (linger) until a flush, whose bound is shorter
# than the emulator's answer: flushing stops with the records still held by "held".
HELD_BY_ONE_TRANSPORT = """
[transports.mem]
type = "memory"
[transports.held]
type = "buffered_http"
linger = 60.0
flush_timeout = 0.2
exit_timeout = 0.0
[[routes]]
transport = ["mem", "held"]
"""


def test_a_record_another_transport_still_holds_is_counted_once_it_delivers(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, extra=HELD_BY_ONE_TRANSPORT)
    source = write_ndjson(tmp_path / "events.ndjson", events(3))
    mixpanel_emulator.client.set_latency(1.0)

    code = main(["send", str(source), "--config", str(config)])

    err = capsys.readouterr().err
    assert code == 1  # held when flushing stopped: the chunk is not confirmed
    assert "3 record(s) of" in err.strip().splitlines()[-1]
    assert len(set(mixpanel_emulator.client.insert_ids("import"))) == 3  # delivered on close
    assert " 3 accepted," in _summary(err)


def test_a_dead_letter_another_transport_still_holds_is_counted_once_it_delivers(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, extra=HELD_BY_ONE_TRANSPORT)
    dead = write_ndjson(
        tmp_path / "dead.jsonl", [{"endpoint": "import", "record": r} for r in events(3)]
    )
    mixpanel_emulator.client.set_latency(1.0)

    code = main(["replay-dead-letters", "--config", str(config), "--file", str(dead)])

    err = capsys.readouterr().err
    assert code == 1
    assert len(set(mixpanel_emulator.client.insert_ids("import"))) == 3
    assert "replayed 3 dead letters: 3 accepted," in _summary(err)


def test_profile_updates_reported_as_decoded_copies_count_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mixpanel.toml"
    config.write_text(
        f"""
[mixpanel]
token = "{TOKEN}"
[transports.inner]
type = "memory"
[transports.workers]
type = "multiprocessing_queue"
inner = "inner"
[transports.mem]
type = "memory"
[[routes]]
transport = ["workers", "mem"]
"""
    )
    profiles = [{"$distinct_id": f"p{n}", "$set": {"n": n}} for n in range(5)]
    source = write_ndjson(tmp_path / "profiles.ndjson", [*profiles, profiles[0]])

    code = main(["send", str(source), "--config", str(config)])

    assert code == 0
    assert " 6 accepted, 0 rejected" in _summary(capsys.readouterr().err)
