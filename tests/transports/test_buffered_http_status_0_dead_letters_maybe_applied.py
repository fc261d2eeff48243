"""Profile updates of a request Mixpanel answered ``status: 0`` are dead-lettered marked
``"maybe_applied": true``: Mixpanel kept the valid ones, and a replay screened by that flag
(docs/commands.md) must not apply their ``$add`` twice (review R54 M1). Over real sockets,
against the emulator, through the transport itself (no validation plugin to refuse the bad
token first)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import PeopleUpdate

from .test_buffered_http import transport_for

pytestmark = pytest.mark.integration


def increment(distinct_id: str, token: str = "emulator-token") -> PeopleUpdate:
    record = {"$token": token, "$distinct_id": distinct_id, "$add": {"logins": 1}}
    return PeopleUpdate(freeze(record, PeopleUpdate.kind))


def test_a_refused_request_of_profile_updates_is_dead_lettered_as_maybe_applied(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    transport = transport_for(mixpanel_emulator, reports, linger=5.0, dead_letter_path=str(dead))
    for i in range(10):
        transport.send(
            increment(f"user-{i}", "not-a-project-token" if i == 5 else "emulator-token")
        )
    assert transport.close(10) == []

    applied = {r["$distinct_id"] for r in mixpanel_emulator.client.records("engage")}
    assert len(applied) == 9, "Mixpanel keeps the valid updates of a refused request"
    assert [r.status for r in reports] == [DeliveryStatus.REJECTED] * 10
    assert all(r.maybe_applied for r in reports)
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [line["record"]["$distinct_id"] for line in lines] == [f"user-{i}" for i in range(10)]
    assert all(line["maybe_applied"] is True for line in lines)


def test_a_dead_letter_nothing_may_have_applied_carries_no_flag(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    transport = transport_for(mixpanel_emulator, dead_letter_path=str(dead))
    transport.send(increment("user-1", "not-a-project-token"))
    assert transport.close(10) == []

    [line] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert line["status"] == "rejected"
    assert "maybe_applied" not in line
