"""A record its transport refuses by raising (a full queue, a producer refusing it) stops
``send`` and ``replay-dead-letters`` at that record, named, after the records before it are
confirmed: a rerun resumes at it and applies none of them again (review R43 F1).

The transport reports the record it refuses (DROPPED, FAILED) before raising; that report
stayed among the chunk's, counted as a failure traced to nothing, so the run ended with
"records before 0 are confirmed", no checkpoint and no commit, and each rerun applied the
profile updates before it once more.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixpanel_core.cli import main
from mixpanel_core.commands.confirmed import ChunkOutcome, ConfirmedDelivery
from mixpanel_core.commands.records import build_message
from mixpanel_core.config import config_from_mapping
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.fixtures import read_records

from .conftest import TOKEN, write_config, write_ndjson
from .test_replay_plugin_failure_names_the_letter import committed_offset, produce_dead_letters

pytestmark = pytest.mark.integration

SMALL_QUEUE = "max_queue_bytes = 3000\n"
"""``buffered_http`` refuses the third record, larger than its whole queue: ``QueueFullError``."""
LARGE_QUEUE = "max_queue_bytes = 100000000\n"


def profile_adds() -> list[dict[str, Any]]:
    """Four profile ``$add``s; the third carries 4,000 bytes more."""
    adds = [{"$token": TOKEN, "$distinct_id": f"user-{n}", "$add": {"visits": 1}} for n in range(4)]
    adds[2]["$set"] = {"blob": "x" * 4000}
    return adds


def confirmed_in(checkpoint: Path) -> int:
    """How many records of the one file sent the checkpoint says are confirmed."""
    [entry] = orjson.loads(checkpoint.read_bytes())["files"].values()
    return int(entry["confirmed"])


def profiles(emulator: Emulator) -> list[str]:
    return sorted(record["$distinct_id"] for record in emulator.client.records("engage"))


def test_send_stops_at_a_record_its_queue_refuses_after_confirming_those_before(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_ndjson(tmp_path / "profiles.ndjson", profile_adds())
    checkpoint = tmp_path / "checkpoint.json"
    arguments = ["send", str(source), "--checkpoint", str(checkpoint)]

    for run in range(2):  # each run stops at the same record, applying nothing twice
        config = write_config(tmp_path, mixpanel_emulator, extra=SMALL_QUEUE)
        assert main([*arguments, "--config", str(config)]) == 1, run
        err = capsys.readouterr().err.splitlines()
        assert err[-1].startswith(
            f"mixpanel-core: error: stopped at record 2 of {source} (counted from 0), "
            "not sent: dropped: the record counts "
        ), err
        assert "more than max_queue_bytes (3000)" in err[-1], err
        assert err[-1].endswith(
            "; the records before it are confirmed: run the same command again to resume at it"
        ), err
        assert confirmed_in(checkpoint) == 2
        assert profiles(mixpanel_emulator) == ["user-0", "user-1"]

    config = write_config(tmp_path, mixpanel_emulator, extra=LARGE_QUEUE)
    assert main([*arguments, "--config", str(config)]) == 0
    assert profiles(mixpanel_emulator) == ["user-0", "user-1", "user-2", "user-3"]


def test_send_stops_at_a_record_the_kafka_producer_refuses(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = kafka_topic_factory(partitions=1)
    config = tmp_path / "kafka.toml"
    config.write_text(
        f'[mixpanel]\ntoken = "{TOKEN}"\n\n[transports.bus]\ntype = "kafka"\n'
        f'bootstrap_servers = "{kafka_bootstrap}"\ntopic = "{topic}"\n'
        "producer = { max_request_size = 3000 }\n"
    )
    source = write_ndjson(tmp_path / "profiles.ndjson", profile_adds())
    checkpoint = tmp_path / "checkpoint.json"
    arguments = ["send", str(source), "--checkpoint", str(checkpoint), "--config", str(config)]

    for run in range(2):
        assert main(arguments) == 1, run
        last = capsys.readouterr().err.splitlines()[-1]
        assert last.startswith(
            f"mixpanel-core: error: stopped at record 2 of {source} (counted from 0), not sent: "
        ), last
        assert "MessageSizeTooLargeError" in last, last

    produced = read_records(kafka_bootstrap, topic, 10, timeout_ms=3000)
    assert [orjson.loads(r.value)["$distinct_id"] for r in produced] == ["user-0", "user-1"]


@pytest.mark.parametrize("keep", [False, True], ids=["no-rejected-file", "rejected-file"])
def test_a_topic_replay_stops_at_a_letter_its_queue_refuses_after_committing_those_before(
    tmp_path: Path,
    mixpanel_emulator: Emulator,
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    capsys: pytest.CaptureFixture[str],
    keep: bool,
) -> None:
    topic = kafka_topic_factory(partitions=1)
    produce_dead_letters(kafka_bootstrap, topic, [("engage", r) for r in profile_adds()])
    rejected = tmp_path / "still-failing.jsonl"
    arguments = ["replay-dead-letters", "--topic", topic,
                 "--bootstrap-servers", kafka_bootstrap, "--group-id", "queue-test"]  # fmt: skip
    if keep:
        arguments += ["--rejected-file", str(rejected)]

    for run in range(2):
        config = write_config(tmp_path, mixpanel_emulator, extra=SMALL_QUEUE)
        assert main([*arguments, "--config", str(config)]) == 1, run
        err = capsys.readouterr().err.splitlines()
        assert err[-1].startswith(
            f"mixpanel-core: error: stopped at the dead letter at offset 2 of {topic}/0, "
            "not sent: dropped: the record counts "
        ), err
        assert err[-1].endswith("; the dead letters before it are committed"), err
        assert committed_offset(kafka_bootstrap, topic, "queue-test") == 2
        assert profiles(mixpanel_emulator) == ["user-0", "user-1"]
        # The refused letter is the error's, not a "still failing" one kept to replay later.
        assert not rejected.exists() or rejected.read_text() == ""

    config = write_config(tmp_path, mixpanel_emulator, extra=LARGE_QUEUE)
    assert main([*arguments, "--config", str(config)]) == 0
    assert profiles(mixpanel_emulator) == ["user-0", "user-1", "user-2", "user-3"]
    assert committed_offset(kafka_bootstrap, topic, "queue-test") == 4


def test_a_record_one_of_two_transports_refuses_stops_the_run_saying_the_other_took_it(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R43 F2: routed to ``direct`` and ``mirror``, refused by ``mirror``'s queue. The
    rerun sends it to both again: the error says so, and ``direct``'s report of it is not
    counted as a record accepted (the summary said "sent 2 records ...: 3 accepted")."""
    source = write_ndjson(tmp_path / "profiles.ndjson", profile_adds())
    checkpoint = tmp_path / "checkpoint.json"
    mirror = (
        '[transports.mirror]\ntype = "buffered_http"\nlinger = 0.005\nexit_timeout = 0.0\n'
        f'{SMALL_QUEUE}\n[[routes]]\ntransport = ["direct", "mirror"]\n'
    )
    config = write_config(tmp_path, mixpanel_emulator, extra=mirror)

    code = main(["send", str(source), "--checkpoint", str(checkpoint), "--config", str(config)])

    assert code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(
        f"mixpanel-core: error: stopped at record 2 of {source} (counted from 0), "
        "not sent to every transport: taken by transports: direct; refused by mirror: "
    ), err
    assert (
        "(a rerun sends it again to direct too: an event is counted once by its $insert_id, a "
        "profile update such as $add is applied again)"
    ) in err[-1]
    [summary] = [line for line in err if line.startswith("sent ")]
    assert summary.startswith("sent 2 records from 1 file(s): 2 accepted"), summary
    assert confirmed_in(checkpoint) == 2
    # Each of the two before it once per transport; the refused one by direct alone.
    assert profiles(mixpanel_emulator) == ["user-0", "user-0", "user-1", "user-1", "user-2"]


def test_a_stop_without_checkpoint_says_a_rerun_sends_every_record_again(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R43 F3: it said "the records before it are confirmed" with nothing to resume
    from: the rerun applied them again."""
    source = write_ndjson(tmp_path / "profiles.ndjson", profile_adds())
    config = write_config(tmp_path, mixpanel_emulator, extra=SMALL_QUEUE)

    assert main(["send", str(source), "--config", str(config)]) == 1

    last = capsys.readouterr().err.splitlines()[-1]
    assert last.endswith(
        "; the records before it are delivered, but without --checkpoint a rerun sends every "
        "record again (events are deduplicated by $insert_id; profile updates such as $add "
        "would be applied again): give --checkpoint to resume where a run stopped"
    ), last


def refused_with_its_sender_dead(
    emulator: Emulator, records: list[dict[str, Any]], batch_size: int
) -> ChunkOutcome[int]:
    """The outcome of ``records`` sent through a ``multiprocessing_queue`` whose sender is
    killed before the last, which it then refuses (no fallback)."""
    config = config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, "api_host": emulator.base_url},
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "direct",
                    "batch_size": batch_size,
                    "linger": 60.0,
                },
                "direct": {"type": "http"},
            },
        }
    )
    delivery: ConfirmedDelivery[int] = ConfirmedDelivery(config)
    *before, last = records
    try:
        for index, record in enumerate(before):
            delivery.submit(build_message(record, None, ("f", index), TOKEN), index)
        if batch_size == 1:
            emulator.wait_for_records(len(before), "engage", timeout=30)
            # And their reports back from the sender: Mixpanel having a record does not mean
            # its report left the sender before the kill (the test failed once on CI so).
            deadline = time.monotonic() + 30
            while delivery.collector.settled < len(before):
                assert time.monotonic() < deadline, "the sender's reports never came back"
                time.sleep(0.02)
        transport: Any = delivery.pipeline.transport("default")
        os.kill(transport.supervisor.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while transport.supervisor.failure is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        with pytest.raises(TransportError, match="no fallback is configured"):
            delivery.submit(build_message(last, None, ("f", len(before)), TOKEN), len(before))
        return delivery.confirm()
    finally:
        delivery.close(5)


def test_what_a_transport_reports_of_earlier_records_as_it_refuses_one_is_kept(
    mixpanel_emulator: Emulator,
) -> None:
    """Review R45 F1: a ``multiprocessing_queue`` whose sender died (no fallback) fails the
    whole batch as the record completing it is refused, the two records before it included;
    their FAILED reports were dropped with the refused record's, and they counted as "still
    queued" instead of failed with their reason."""
    outcome = refused_with_its_sender_dead(mixpanel_emulator, profile_adds()[:3], batch_size=3)

    assert outcome.undelivered == 0
    assert [lost.item for lost in outcome.failed] == [0, 1]
    assert all("no fallback is configured" in lost.report.reason for lost in outcome.failed)


def test_a_refused_record_an_enricher_copied_is_told_from_an_earlier_one_with_its_insert_id(
    tmp_path: Path, mixpanel_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R46 F1: ``super_properties`` hands the transport a copy, and an earlier record
    shares the refused one's ``$insert_id`` (a record sent twice). The queue's DROPPED report
    of the copy was taken for the earlier record's: nothing was checkpointed, and each rerun
    applied the ``$add`` between them again."""
    now = time.time() - 3600
    first = {"event": "e", "properties": {"distinct_id": "u", "time": now, "$insert_id": "dup-1"}}
    again = {"event": "e", "properties": {**first["properties"], "blob": "x" * 4000}}
    add = {"$token": TOKEN, "$distinct_id": "user-1", "$add": {"visits": 1}}
    source = write_ndjson(tmp_path / "records.ndjson", [first, add, again])
    checkpoint = tmp_path / "checkpoint.json"
    extra = SMALL_QUEUE + '[plugins.super_properties]\nproperties = { source = "backfill" }\n'
    arguments = ["send", str(source), "--checkpoint", str(checkpoint)]

    for run in range(2):
        config = write_config(
            tmp_path, mixpanel_emulator, plugins=["super_properties"], extra=extra
        )
        assert main([*arguments, "--config", str(config)]) == 1, run
        last = capsys.readouterr().err.splitlines()[-1]
        assert last.startswith(
            f"mixpanel-core: error: stopped at record 2 of {source} (counted from 0), "
            "not sent: dropped: the record counts "
        ), last
        assert confirmed_in(checkpoint) == 2
        assert profiles(mixpanel_emulator) == ["user-1"]


def test_a_refused_record_reported_as_a_copy_is_told_from_an_earlier_equal_one(
    mixpanel_emulator: Emulator,
) -> None:
    """Review R47 F1: a ``multiprocessing_queue`` whose sender died reports the record it
    cannot queue as a copy decoded from its frame. The same ``$add`` line earlier in the
    chunk took that report for its own: counted failed though Mixpanel had it, so nothing
    was checkpointed, and the rerun applied the records before it again."""
    adds = profile_adds()
    records = [adds[0], adds[1], adds[0]]  # the last, refused, is the first again
    outcome = refused_with_its_sender_dead(mixpanel_emulator, records, batch_size=1)

    assert (outcome.accepted, outcome.failed, outcome.undelivered) == (2, (), 0)
