"""``mixpanel-core send``: backfills arrive whole, rejections are kept, interrupted runs resume."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.commands.progress import ProgressLine
from mixpanel_core.commands.send import Backfill, SendOptions
from mixpanel_core.config import load_config
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import ConfigError

from .conftest import TOKEN, events, read_lines, write_config, write_json, write_ndjson

pytestmark = pytest.mark.integration


def backfill(config: Path, files: list[Path], **options: object) -> Backfill:
    opts = SendOptions(files=tuple(files), **options)  # type: ignore[arg-type]
    return Backfill(load_config(config), opts, ProgressLine(live=False))


def test_a_backfill_of_json_ndjson_and_gzip_files_arrives_complete(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    profiles = [{"$distinct_id": f"user-{n}", "$set": {"plan": "pro"}} for n in range(20)]
    groups = [{"$group_key": "company", "$group_id": "acme", "$set": {"size": 10}}]
    files = [
        write_ndjson(tmp_path / "a.ndjson.gz", events(300), compress=True),
        write_json(tmp_path / "b.json", events(200, start=300), indent=True),
        write_json(tmp_path / "c.json.gz", events(1, start=500)[0], compress=True),
        write_ndjson(tmp_path / "profiles.ndjson", [*profiles, *groups]),
    ]

    code = main(["send", *map(str, files), "--config", str(config), "--batch-size", "128"])

    assert code == 0
    client = mixpanel_emulator.client
    imported = client.records("import")
    assert sorted(r["properties"]["n"] for r in imported) == list(range(501))
    assert len(set(client.insert_ids("import"))) == 501  # one derived id per record
    assert [r["$distinct_id"] for r in client.records("engage")] == [
        p["$distinct_id"] for p in profiles
    ]
    assert client.records("groups")[0]["$token"] == TOKEN  # the configured token filled in
    assert "sent 522 records from 4 file(s): 522 accepted, 0 rejected" in capsys.readouterr().err


def test_records_mixpanel_rejects_are_kept_with_reason_and_field_while_the_rest_arrive(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    # No plugins: the emulator (Mixpanel) judges the records, not mixpanel_limits.
    config = write_config(tmp_path, mixpanel_emulator, plugins=[])
    records = events(10)
    records[3]["properties"]["time"] = 1000  # before 1971: /import refuses it
    records[7]["properties"]["distinct_id"] = "undefined"  # a placeholder id
    source = write_ndjson(tmp_path / "events.ndjson", [*records, "not an object"])
    rejected = tmp_path / "rejected.jsonl"

    code = main(["send", str(source), "--config", str(config), "--rejected-file", str(rejected)])

    assert code == 0
    arrived = sorted(r["properties"]["n"] for r in mixpanel_emulator.client.records("import"))
    assert arrived == [0, 1, 2, 4, 5, 6, 8, 9]
    lines = {line["index"]: line for line in read_lines(rejected)}
    assert lines[3]["field"] == "properties.time"
    assert lines[3]["status"] == "rejected"
    assert lines[3]["http_status"] == 400
    assert lines[3]["stage"] == "delivery"
    assert lines[3]["record"]["properties"]["n"] == 3
    assert lines[7]["field"] == "properties.distinct_id"
    assert lines[10]["stage"] == "validation"
    assert "must be a JSON object" in lines[10]["reason"]
    assert lines[10]["source"] == str(source)


def test_invalid_records_are_caught_by_the_pipeline_before_sending(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)  # default plugins: mixpanel_limits
    records = events(5)
    records[2]["properties"]["time"] = 1000
    source = write_ndjson(tmp_path / "events.ndjson", records)
    rejected = tmp_path / "rejected.jsonl"

    backfill(config, [source], rejected_file=rejected).run()

    (line,) = read_lines(rejected)
    assert (line["index"], line["stage"], line["field"]) == (2, "validation", "properties.time")
    assert len(mixpanel_emulator.client.records("import")) == 4
    assert mixpanel_emulator.client.stats()["rejected"].get("import", 0) == 0


def test_rejections_without_a_rejected_file_exit_1_with_the_first_reason(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "events.ndjson", [*events(3), {"neither": "shape"}])

    assert main(["send", str(source), "--config", str(config)]) == 1

    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mixpanel-core: error: 1 record(s) were rejected or invalid")
    assert "cannot tell the endpoint" in err[-1]
    assert len(mixpanel_emulator.client.records("import")) == 3


def stop_after(count: int) -> Callable[[Path, int], None]:
    """A test hook that acts like Ctrl-C once ``count`` records were handled."""

    def hook(path: Path, index: int) -> None:
        if index + 1 == count:
            raise KeyboardInterrupt

    return hook


def test_an_interrupted_run_resumes_at_the_checkpoint_and_each_insert_id_counts_once(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, transport="http")
    source = write_ndjson(tmp_path / "events.ndjson", events(250))
    checkpoint = tmp_path / "send.checkpoint"
    first = backfill(config, [source], checkpoint=checkpoint, batch_size=100)
    first.after_record = stop_after(150)

    with pytest.raises(KeyboardInterrupt):
        first.run()
    sent_before = mixpanel_emulator.client.insert_ids("import")
    assert len(sent_before) == 150
    assert orjson.loads(checkpoint.read_bytes())["files"].popitem()[1]["confirmed"] == 100

    backfill(config, [source], checkpoint=checkpoint, batch_size=100).run()

    client = mixpanel_emulator.client
    ids = client.insert_ids("import")
    assert len(set(ids)) == 250
    assert ids[:150] == sent_before
    assert ids[150:200] == sent_before[100:150]  # only the unconfirmed chunk was sent again
    assert client.stats()["unique_events"] == 250

    again = backfill(config, [source], checkpoint=checkpoint).run()
    assert again.records == 0  # complete: nothing sent
    assert again.skipped == 250
    assert len(client.insert_ids("import")) == 300


def test_a_killed_process_resumes_without_resending_what_was_confirmed(
    tmp_path: Path, mixpanel_emulator: Emulator
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, transport="http")
    source = write_ndjson(tmp_path / "events.ndjson", events(120))
    checkpoint = tmp_path / "send.checkpoint"
    first = backfill(config, [source], checkpoint=checkpoint, batch_size=50)
    first.after_record = stop_after(60)
    with pytest.raises(KeyboardInterrupt):
        first.run()

    # The second run is held at its first request, then killed: no chance to clean up.
    client = mixpanel_emulator.client
    client.stall()
    command = [sys.executable, "-m", "mixpanel_core.cli", "send", str(source)]
    command += ["--config", str(config), "--checkpoint", str(checkpoint), "--batch-size", "50"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        while client.faults()["stalled_requests"] < 1:
            assert process.poll() is None, "the command ended before reaching the emulator"
            time.sleep(0.01)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    client.release()

    assert (
        main(["send", str(source), "--config", str(config), "--checkpoint", str(checkpoint)]) == 0
    )

    ids = client.insert_ids("import")
    assert len(set(ids)) == 120
    assert client.stats()["unique_events"] == 120
    counts = Counter(ids)
    # The first 50 were confirmed and never sent again; the rest may arrive more than once
    # (the killed run's held request is answered on release), and count once.
    assert all(counts[i] == 1 for i in ids[:50])
    assert all(counts[i] >= 2 for i in ids[50:60])


def test_records_not_delivered_stop_the_run_and_keep_the_checkpoint(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator, retry_budget=0.0)
    source = write_ndjson(tmp_path / "events.ndjson", events(30))
    checkpoint = tmp_path / "send.checkpoint"
    arguments = ["send", str(source), "--config", str(config), "--checkpoint", str(checkpoint)]
    mixpanel_emulator.client.fail_next(1, 503)

    assert main([*arguments, "--batch-size", "10"]) == 1

    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.match(r"mixpanel-core: error: \d+ record\(s\) of .* were not delivered", error)
    assert "HTTP 503" in error
    assert "run the same command again" in error
    assert not checkpoint.exists()
    assert main(arguments) == 0
    assert mixpanel_emulator.client.stats()["unique_events"] == 30


def test_an_unknown_transport_is_a_one_line_error(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, mixpanel_emulator)
    source = write_ndjson(tmp_path / "e.ndjson", events(1))
    with pytest.raises(ConfigError):
        backfill(config, [source], transport="nope")
    assert main(["send", str(source), "--config", str(config), "--transport", "nope"]) == 1
    assert "no transport named 'nope'; configured: direct" in capsys.readouterr().err


def test_help_shows_examples_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["send", "--help"])
    out = capsys.readouterr().out
    assert "mixpanel-core send events.ndjson.gz" in out
    assert "exit codes:" in out


def test_without_a_checkpoint_the_error_does_not_promise_a_resume(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # It said "run the same command again to resume from there": the rerun sent everything
    # again, and a profile $add among the records was applied twice.
    config = write_config(tmp_path, mixpanel_emulator, retry_budget=0.0)
    source = write_ndjson(tmp_path / "events.ndjson", events(30))
    mixpanel_emulator.client.fail_next(1, 503)

    assert main(["send", str(source), "--config", str(config), "--batch-size", "10"]) == 1

    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "run the same command again" not in error
    assert "without --checkpoint a rerun sends every record again" in error
