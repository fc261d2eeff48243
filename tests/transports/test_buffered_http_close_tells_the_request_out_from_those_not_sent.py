"""``close`` that gives up on a take of several requests (two endpoints) while the first is
out says which records were sent: those of the request out "may yet reach Mixpanel" (during
the request), those of the take's later requests were never sent. Every record of the take
was said to be "during the request" before, so an operator heeding the docs held back
profile updates that were safe to replay (found by review H1)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import PeopleUpdate

from .test_buffered_http import make_event, transport_for, wait_for_stalled_request

pytestmark = pytest.mark.integration

DURING = "not delivered: close() timed out during the request"
NOT_SENT = "not sent: close() timed out first"


def test_records_of_requests_not_started_are_said_not_sent(
    mixpanel_emulator: Emulator, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    # A linger far longer than the test: the flush below makes the one take of everything.
    transport = transport_for(mixpanel_emulator, reports, linger=60.0, dead_letter_path=str(dead))
    events = [make_event("take", i) for i in range(50)]
    updates = [
        PeopleUpdate(
            freeze(
                {"$token": "emulator-token", "$distinct_id": f"u{i}", "$add": {"n": 1}}, "people"
            )
        )
        for i in range(5)
    ]
    mixpanel_emulator.client.stall()
    for message in [*events, *updates]:
        transport.send(message)
    assert transport.flush(0.05) != []  # the take is made; its first request is held
    wait_for_stalled_request(mixpanel_emulator)
    left = transport.close(0.5)
    assert sorted(map(id, left)) == sorted(map(id, [*events, *updates]))
    mixpanel_emulator.client.release()
    deadline = time.monotonic() + 10
    while not mixpanel_emulator.client.stats()["requests"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)  # the held request's answer, and nothing else
    requests = mixpanel_emulator.client.stats()["requests"]
    assert list(requests) == ["track"], requests  # the take's first request, and only it
    assert len(mixpanel_emulator.client.records("track")) == 50
    assert mixpanel_emulator.client.records("engage") == []
    reasons = {
        (r.message.endpoint if r.message else None, r.status, r.reason, r.maybe_applied)
        for r in reports
    }
    # The request out may yet be applied (review R10: its reports said it could not).
    assert reasons == {
        ("track", DeliveryStatus.FAILED, DURING, True),
        ("engage", DeliveryStatus.FAILED, NOT_SENT, False),
    }
    lines = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert sorted((line["endpoint"], line["reason"]) for line in lines) == sorted(
        [("track", DURING)] * 50 + [("engage", NOT_SENT)] * 5
    )
