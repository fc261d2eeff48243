"""The forwarder against the real broker and the emulator, run as a subprocess as in production."""

from __future__ import annotations

import re
import signal
import time

import pytest

from mixpanel_core.forwarder.dead_letters import PREFIX
from mixpanel_core.kafka import headers
from mixpanel_core.messages import ImportEvent
from transports.kafka import KafkaTransport

from .conftest import FAST_GROUP, ForwardingRig, free_port

pytestmark = pytest.mark.integration


def test_until_caught_up_delivers_everything_that_was_in_the_topic_and_exits_0(
    rig: ForwardingRig,
) -> None:
    produced = rig.produce_events(3000)
    client = rig.client()
    client.people_set("user-1", {"plan": "pro"})
    client.group_set("company", "acme", {"size": 10})
    client.close(10)

    code, stderr = rig.run_until_caught_up(rig.write_config())

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(produced)
    assert len(rig.emulator.client.records("engage")) == 1
    assert len(rig.emulator.client.records("groups")) == 1
    assert sum(o or 0 for o in rig.committed().values()) == 3002


def test_killed_with_sigkill_mid_stream_and_restarted_loses_no_insert_id(
    rig: ForwardingRig,
) -> None:
    produced = rig.produce_events(8000)
    rig.emulator.client.set_latency(0.05)  # slow Mixpanel down so the kill lands mid-stream
    config = rig.write_config({"batch_records": 500})
    first = rig.start(config)
    rig.wait_for_delivered(1500)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    rig.emulator.client.set_latency(0)

    code, stderr = rig.run_until_caught_up(config)

    assert code == 0, stderr
    delivered = rig.delivered_insert_ids()
    assert set(delivered) == set(produced)
    assert len(delivered) < 8000 + 2000, "only the uncommitted tail may be sent twice"


def test_an_emulator_failing_30_percent_with_429_and_500_loses_nothing(
    rig: ForwardingRig,
) -> None:
    produced = rig.produce_events(5000)
    rig.emulator.client.fail_fraction(0.3, (429, 500), seed=7)

    code, stderr = rig.run_until_caught_up(rig.write_config({"batch_records": 250}))

    assert code == 0, stderr
    assert set(rig.delivered_insert_ids()) == set(produced)
    failures = rig.emulator.client.stats()["requests"]["track"]
    assert set(failures) >= {"429", "500"}, "the faults must actually have happened"


def test_poison_and_rejected_records_are_dead_lettered_with_reasons_and_the_rest_delivered(
    rig: ForwardingRig,
) -> None:
    good = rig.produce_events(200)
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])
    rig.produce_raw(b'{"event": "x", "properties": {}}', [(headers.ENDPOINT, b"nowhere")])
    rig.produce_raw(b'{"properties": {}}', [(headers.ENDPOINT, b"track")])
    rig.produce_rejected_import()
    good += rig.produce_events(200, prefix="late")

    code, stderr = rig.run_until_caught_up(rig.write_config(plugins=[]))

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(good)
    letters = rig.dead_letters(4)
    why = [{k: v.decode() for k, v in r.headers if k.startswith(PREFIX)} for r in letters]
    stages = sorted(w[PREFIX + "stage"] for w in why)
    assert stages == ["decode", "decode", "decode", "delivery"]
    rejected = next(w for w in why if w[PREFIX + "stage"] == "delivery")
    assert rejected[PREFIX + "http-status"] == "400"
    assert rejected[PREFIX + "field"] == "properties.distinct_id"
    assert rejected[PREFIX + "source-topic"] == rig.topic
    assert {PREFIX + k for k in ("source-partition", "source-offset", "attempts", "time")} <= set(
        rejected
    )
    not_json = next(r for r in letters if r.value == b"{not json")
    assert (headers.ENDPOINT, b"track") in not_json.headers, "original headers are kept"
    assert not_json.key == b"raw"
    reasons = " ".join(w[PREFIX + "reason"] for w in why)
    assert "not JSON" in reasons
    assert "unknown endpoint 'nowhere'" in reasons
    assert all(o is not None for o in rig.committed().values())


def test_a_record_nested_hundreds_of_levels_deep_is_dead_lettered_and_the_rest_delivered(
    rig: ForwardingRig,
) -> None:
    # Valid JSON within orjson's limit of 1,024 levels: it stopped the forwarder at this record
    # (a RecursionError, nothing committed) on every start.
    good = rig.produce_events(3)
    deep = b"[" * 600 + b"]" * 600
    value = b'{"event": "e", "properties": {"distinct_id": "u", "v": ' + deep + b"}}"
    rig.produce_raw(value, [(headers.ENDPOINT, b"track")])
    good += rig.produce_events(3, prefix="after")

    code, stderr = rig.run_until_caught_up(rig.write_config())

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(good)
    [letter] = rig.dead_letters(1)
    assert letter.value == value
    why = {k: v.decode() for k, v in letter.headers if k.startswith(PREFIX)}
    assert why[PREFIX + "stage"] == "decode"
    assert "nested too deeply to read" in why[PREFIX + "reason"]
    assert sum(offset or 0 for offset in rig.committed().values()) == 7, "all committed"


def test_records_the_enabled_validators_refuse_are_dead_lettered_before_sending(
    rig: ForwardingRig,
) -> None:
    good = rig.produce_events(50)
    invalid = ImportEvent.from_record(
        {
            "event": "Old purchase",
            "properties": {"token": "emulator-token", "distinct_id": "anonymous", "time": 1e9},
        }
    )
    transport = KafkaTransport(rig.bootstrap, rig.topic)
    transport.send(invalid)
    assert transport.close(10) == []

    code, stderr = rig.run_until_caught_up(rig.write_config())  # mixpanel_limits is on

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(good)
    [letter] = rig.dead_letters(1)
    why = {k: v.decode() for k, v in letter.headers if k.startswith(PREFIX)}
    assert why[PREFIX + "stage"] == "decode"
    assert why[PREFIX + "field"] == "properties.distinct_id"
    assert "placeholder" in why[PREFIX + "reason"]
    assert rig.emulator.client.stats()["requests"].get("import") is None, "never sent"


def test_on_poison_stop_exits_1_and_commits_nothing_from_the_poison_record_on(
    rig: ForwardingRig,
) -> None:
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])
    config = rig.write_config({"on_poison": "stop", "dead_letter_topic": None})
    config.write_text(config.read_text().replace("dead_letter_topic = null\n", ""))

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1
    assert "on_poison is 'stop'" in stderr
    assert "not JSON" in stderr
    assert all(o in (None, 0) for o in rig.committed().values())


def test_two_forwarders_in_one_group_one_killed_lose_nothing(rig: ForwardingRig) -> None:
    produced = rig.produce_events(6000)
    rig.emulator.client.set_latency(0.05)
    config = rig.write_config({"batch_records": 300})
    doomed = rig.start(config)
    survivor = rig.start(config, "--until-caught-up")
    rig.wait_for_delivered(1200)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(30)
    rig.emulator.client.set_latency(0)

    _, stderr = survivor.communicate(timeout=120)

    assert survivor.returncode == 0, stderr
    assert set(rig.delivered_insert_ids()) == set(produced)


def test_refused_credentials_stop_with_a_clear_error_and_nothing_committed(
    rig: ForwardingRig,
) -> None:
    client = rig.client()
    for i in range(50):
        client.import_data(None, f"user-{i}", "Backfilled", 1_700_000_000 + i)
    client.close(10)
    config = rig.write_config(mixpanel={"service_account_secret": "wrong-secret-xyz"})

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1
    assert "Mixpanel refused the service account 'sa-user'" in stderr
    assert "wrong-secret-xyz" not in stderr
    assert all(o is None for o in rig.committed().values())
    assert rig.emulator.client.stats()["accepted"]["import"] == 0


def test_sigterm_delivers_what_is_buffered_commits_and_exits_0(rig: ForwardingRig) -> None:
    """...and its closing line shows the lag it leaves (none), measured after that commit."""
    produced = rig.produce_events(3000)
    port = free_port()
    config = rig.write_config({"linger": 30.0, "batch_records": 2000, "metrics_port": port})
    process = rig.start(config)
    # With a 30 s linger, the tail below one batch stays buffered until SIGTERM flushes it.
    rig.wait_for_delivered(2000)
    rig.wait_for_consumed(port, 3000)  # the tail is in the forwarder's buffer
    assert len(rig.delivered_insert_ids()) == 2000, "the tail waits for its linger"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    delivered = rig.delivered_insert_ids()
    assert sorted(delivered) == sorted(produced)
    assert sum(o or 0 for o in rig.committed().values()) == 3000
    [final] = re.findall(r"forwarder stopped: (.*)", stderr)
    assert final.endswith(" lag=0"), final


def test_a_retry_after_longer_than_the_group_timeouts_keeps_the_member_and_loses_nothing(
    rig: ForwardingRig,
) -> None:
    """While it waits out a 429's Retry-After, the forwarder polls with its partitions paused:
    the group sees a live member past session_timeout_ms and max_poll_interval_ms, so it
    never rebalances, and the batch goes once Mixpanel recovers."""
    produced = rig.produce_events(600)
    rig.emulator.client.fail_next(1, 429, endpoints=["track"], retry_after=10)
    consumer = {**FAST_GROUP, "max_poll_interval_ms": 4000}  # both under the 10 s wait
    started = time.monotonic()

    code, stderr = rig.run_until_caught_up(rig.write_config({"consumer": consumer}))

    assert code == 0, stderr
    assert time.monotonic() - started >= 10, "Retry-After was waited out"
    assert rig.emulator.client.stats()["requests"]["track"]["429"] == 1
    assert sorted(rig.delivered_insert_ids()) == sorted(produced), "each delivered once"
    assert stderr.count("partitions assigned:") == 1, "joined once and never rebalanced"
    assert sum(o or 0 for o in rig.committed().values()) == 600


def test_records_buffered_for_a_revoked_partition_are_dropped_and_delivered_once_by_its_owner(
    rig: ForwardingRig,
) -> None:
    """A member that loses partitions while their records sit in its buffer drops them and
    never delivers or commits them: the new owner reads them again and delivers them once."""
    produced = rig.produce_events(600)
    port = free_port()
    # A long linger holds everything the first member reads in its buffer, undelivered.
    first = rig.start(rig.write_config({"linger": 60.0, "metrics_port": port}))
    rig.wait_for_consumed(port, 600)
    assert rig.delivered_insert_ids() == []
    # A second member joins: the first loses partitions while their records are buffered.
    second = rig.start(rig.write_config(), "--until-caught-up")
    rig.wait_for_delivered(1)  # the second member delivered what it was given
    first.send_signal(signal.SIGTERM)
    _, first_stderr = first.communicate(timeout=60)
    _, second_stderr = second.communicate(timeout=90)

    assert first.returncode == 0, first_stderr
    assert second.returncode == 0, second_stderr
    dropped = re.findall(r"partitions revoked: .+ \(dropped (\d+) buffered records", first_stderr)
    assert sum(map(int, dropped)) > 0, "a partition was revoked while its records were buffered"
    delivered = rig.delivered_insert_ids()
    assert sorted(delivered) == sorted(produced), "nothing lost, nothing sent twice"
    assert sum(o or 0 for o in rig.committed().values()) == 600
