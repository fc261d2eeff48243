"""``mixpanel_delivered`` in the forwarder: each record's final outcome, as Mixpanel decided it,
reaches the enabled plugins of the forwarder's process (against the real broker and the
emulator, the forwarder run as a subprocess as in production)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.forwarder.loop import Forwarder
from mixpanel_core.ingestion import Deadline, RetryPolicy, Wait
from mixpanel_core.kafka import headers
from mixpanel_core.messages import Endpoint, ImportEvent, Message
from mixpanel_core.testing import install_distribution
from transports.kafka import KafkaTransport

from .conftest import ForwardingRig
from .test_loop import TOPIC, ScriptedConsumer, _config, _partition, _records, run_rounds

pytestmark = pytest.mark.integration

OBSERVER_PLUGIN = '''\
"""Test plugins: one writes every delivery report it sees to a file, one raises on each."""

import json

from mixpanel_core import hookimpl


class WriteReports:
    def __init__(self, path):
        self._file = open(path, "a", buffering=1)

    @classmethod
    def from_config(cls, context):
        return cls(context.options["path"])

    @hookimpl
    def mixpanel_delivered(self, report):
        message = report.message
        self._file.write(json.dumps({
            "status": report.status.value,
            "transport": report.transport,
            "reason": report.reason,
            "field": report.field,
            "http_status": report.http_status,
            "maybe_applied": report.maybe_applied,
            "message": None if message is None else message.record,
        }) + "\\n")


class RaiseOnReports:
    @hookimpl
    def mixpanel_delivered(self, report):
        raise ValueError("this observer is broken")
'''


@pytest.fixture
def observer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Installs the plugins ``write_reports`` and ``raise_on_reports`` through real entry
    points (a dist-info on the forwarder subprocess's ``PYTHONPATH``); returns the site dir."""
    root = install_distribution(
        tmp_path / "site",
        "report-observer",
        {
            "mixpanel_core.plugins": {
                "write_reports": "report_observer:WriteReports",
                "raise_on_reports": "report_observer:RaiseOnReports",
            }
        },
        {"report_observer": OBSERVER_PLUGIN},
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
    )
    return root


def observed_config(rig: ForwardingRig, reports: Path, plugins: list[str]) -> Path:
    """The rig's config with ``plugins`` enabled and ``write_reports`` writing to ``reports``."""
    config = rig.write_config(plugins=plugins)
    with config.open("a") as toml:
        toml.write(f"[plugins.write_reports]\npath = {json.dumps(str(reports))}\n")
    return config


def read_reports(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def insert_id(report: dict[str, Any]) -> str | None:
    message = report["message"]
    if message is None:
        return None
    found: str | None = message.get("properties", {}).get("$insert_id")
    return found


def test_mixpanel_delivered_in_the_forwarder_sees_accepted_for_every_delivered_record(
    rig: ForwardingRig, observer: Path, tmp_path: Path
) -> None:
    """One ACCEPTED report per record, with its message, and nothing else."""
    produced = rig.produce_events(1200)
    reports = tmp_path / "reports.jsonl"

    code, stderr = rig.run_until_caught_up(observed_config(rig, reports, ["write_reports"]))

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(produced)
    seen = read_reports(reports)
    assert {r["status"] for r in seen} == {"accepted"}
    assert {r["transport"] for r in seen} == {"forwarder"}
    assert sorted(insert_id(r) or "" for r in seen) == sorted(produced), "once each"


def test_mixpanel_delivered_in_the_forwarder_sees_mixpanels_rejection_with_its_reason(
    rig: ForwardingRig, observer: Path, tmp_path: Path
) -> None:
    """A strict /import 400 entry: REJECTED with Mixpanel's reason, field and status, after
    its dead letter; the records around it ACCEPTED."""
    good = rig.produce_events(100)
    rig.produce_rejected_import()  # $insert_id "rej-1", a placeholder distinct_id
    good += rig.produce_events(100, prefix="late")
    reports = tmp_path / "reports.jsonl"

    # mixpanel_limits is off: Mixpanel, not a validate hook, is the one to refuse it.
    code, stderr = rig.run_until_caught_up(observed_config(rig, reports, ["write_reports"]))

    assert code == 0, stderr
    [letter] = rig.dead_letters(1)
    seen = read_reports(reports)
    [rejected] = [r for r in seen if r["status"] != "accepted"]
    assert rejected["status"] == "rejected"
    assert insert_id(rejected) == "rej-1"
    assert rejected["http_status"] == 400
    assert rejected["field"] == "properties.distinct_id"
    reason = dict(letter.headers)["dead-letter-reason"].decode()
    assert rejected["reason"] == reason, "Mixpanel's reason, as the dead letter carries it"
    accepted = [insert_id(r) for r in seen if r["status"] == "accepted"]
    assert sorted(i or "" for i in accepted) == sorted(good)


@pytest.mark.parametrize("rig_partitions", [1])  # all in one request, in order
def test_mixpanel_delivered_in_the_forwarder_sees_profile_updates_that_may_have_applied(
    rig: ForwardingRig, observer: Path, tmp_path: Path
) -> None:
    """An /engage request Mixpanel refused in part (status 0, naming none): every update is
    REJECTED and dead-lettered, and each report says Mixpanel may have applied it, as it
    kept the valid ones (review R54 M1)."""
    updates = [
        json.dumps(
            {
                "$token": "not-the-project-token" if i == 3 else "emulator-token",
                "$distinct_id": f"person-{i}",
                "$add": {"visits": 1},
            }
        ).encode()
        for i in range(6)
    ]
    rig.produce_raws(updates, [(headers.ENDPOINT, b"engage")])
    reports = tmp_path / "reports.jsonl"

    # mixpanel_limits is off: Mixpanel, not a validate hook, is the one to refuse the token.
    code, stderr = rig.run_until_caught_up(observed_config(rig, reports, ["write_reports"]))

    assert code == 0, stderr
    assert len(rig.dead_letters(6)) == 6
    assert len(rig.emulator.client.records("engage")) == 5, "Mixpanel kept the valid ones"
    seen = read_reports(reports)
    assert sorted(r["message"]["$distinct_id"] for r in seen) == [f"person-{i}" for i in range(6)]
    assert {(r["status"], r["maybe_applied"]) for r in seen} == {("rejected", True)}


def test_mixpanel_delivered_in_the_forwarder_sees_records_refused_before_sending(
    rig: ForwardingRig, observer: Path, tmp_path: Path
) -> None:
    """A record a validate hook refuses: DROPPED with its message and the hook's reason. A
    record that is not even a message: DROPPED without one, with the decoder's reason."""
    good = rig.produce_events(50)
    invalid = ImportEvent.from_record(
        {
            "event": "Old purchase",
            "properties": {
                "token": "emulator-token",
                "distinct_id": "anonymous",
                "time": 1e9,
                "$insert_id": "refused-1",
            },
        }
    )
    transport = KafkaTransport(rig.bootstrap, rig.topic)
    transport.send(invalid)
    assert transport.close(10) == []
    rig.produce_raw(b"{not json", [(headers.ENDPOINT, b"track")])
    reports = tmp_path / "reports.jsonl"

    config = observed_config(rig, reports, ["mixpanel_limits", "write_reports"])
    code, stderr = rig.run_until_caught_up(config)

    assert code == 0, stderr
    assert len(rig.dead_letters(2)) == 2
    seen = read_reports(reports)
    dropped = [r for r in seen if r["status"] == "dropped"]
    refused = next(r for r in dropped if r["message"] is not None)
    assert insert_id(refused) == "refused-1"
    assert refused["field"] == "properties.distinct_id"
    assert "placeholder" in refused["reason"]
    assert refused["http_status"] is None, "never sent"
    poison = next(r for r in dropped if r["message"] is None)
    assert "not JSON" in poison["reason"]
    assert len(dropped) == 2
    assert sorted(insert_id(r) or "" for r in seen if r["status"] == "accepted") == sorted(good)
    assert len(seen) == 52


def test_mixpanel_delivered_in_the_forwarder_that_raises_is_logged_and_delivery_goes_on(
    rig: ForwardingRig, observer: Path, tmp_path: Path
) -> None:
    """A broken observer: every record is still delivered and committed, the error is logged,
    and the other observers still see every report."""
    produced = rig.produce_events(600)
    reports = tmp_path / "reports.jsonl"
    config = observed_config(rig, reports, ["raise_on_reports", "write_reports"])

    code, stderr = rig.run_until_caught_up(config)

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(produced)
    assert sum(o or 0 for o in rig.committed().values()) == 600
    assert "plugin 'raise_on_reports' failed in mixpanel_delivered" in stderr
    assert "this observer is broken" in stderr
    seen = read_reports(reports)
    assert sorted(insert_id(r) or "" for r in seen) == sorted(produced)


# -- the loop alone, with a scripted consumer (see test_loop) --------------------------------


def test_mixpanel_delivered_in_the_forwarder_skips_retries_and_waits_for_the_commit() -> None:
    """A batch that fails, then succeeds: one ACCEPTED report per record, none for the failed
    attempt, each made once the offsets past it are committed."""
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(4))}]
    seen: list[tuple[DeliveryStatus, list[dict[Any, int]]]] = []

    def report(delivered: DeliveryReport) -> None:
        seen.append((delivered.status, list(consumer.commits)))

    run_rounds(consumer, [DeliveryStatus.FAILED, DeliveryStatus.ACCEPTED], report)

    assert seen == [(DeliveryStatus.ACCEPTED, [{p0: 4}])] * 4


def test_mixpanel_delivered_in_the_forwarder_says_nothing_of_records_left_at_shutdown() -> None:
    """Records still failing when the shutdown deadline passes stay uncommitted, to be read
    again after a restart: they are not reported FAILED."""
    p0 = _partition(0)
    consumer = ScriptedConsumer([p0])
    consumer.script = [{p0: _records(0, range(3))}]
    seen: list[DeliveryReport] = []
    forwarder: Forwarder

    def deliver(
        endpoint: Endpoint, messages: Sequence[Message], wait: Wait, deadline: Deadline
    ) -> list[DeliveryReport]:
        forwarder.request_stop()
        return [DeliveryReport(m, DeliveryStatus.FAILED, "forwarder", attempts=1) for m in messages]

    forwarder = Forwarder(
        consumer,
        TOPIC,
        deliver,
        _config(shutdown_deadline=0.2),
        retry_policy=RetryPolicy(base=0.01, cap=0.01),
        report=seen.append,
    )
    forwarder.run()

    assert forwarder.metrics.retried > 0, "it was retried until the deadline"
    assert consumer.commits == []
    assert seen == []
