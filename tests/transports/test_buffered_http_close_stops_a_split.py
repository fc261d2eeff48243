"""Once ``close(timeout)`` gives up on the request out (reports its records FAILED,
dead-letters them, returns them), no part of that request is sent afterwards. The halves of
a request split after a 413, or narrowed down after a ``status: 0``, were still sent by the
sender thread once the answer came, seconds after ``close`` returned: profile updates
dead-lettered as not delivered were applied by Mixpanel, and a replay of the dead letters
applied them twice (review R75 F2). Against the emulator, over a socket."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import Message, PeopleUpdate

from .test_buffered_http import make_event, transport_for

pytestmark = pytest.mark.integration

DURING = "not delivered: close() timed out during the request"
QUIET = 1.5
"""Seconds the emulator is watched after the held answer: the halves took a few ms each."""


def _updates(count: int) -> list[Message]:
    return [
        PeopleUpdate(
            freeze(
                {
                    "$token": "emulator-token",
                    "$distinct_id": f"user-{n}",
                    "$add": {"credits": 10},
                    "$set": {"pad": "p" * 200},
                },
                "people",
            )
        )
        for n in range(count)
    ]


def _held(emulator: Emulator) -> None:
    deadline = time.monotonic() + 10
    while emulator.faults()["stalled_requests"] < 1:
        assert time.monotonic() < deadline, "the sender never reached the emulator"
        time.sleep(0.005)


@pytest.mark.parametrize("refusal", ["413", "status-0"])
def test_no_half_of_a_request_close_gave_up_on_is_sent(tmp_path: Path, refusal: str) -> None:
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    if refusal == "413":
        messages = _updates(8)  # about 2 KB of body: split down to requests of two
        endpoint, limits, kept = "engage", {"max_body_bytes": 1000}, 0
    else:
        # One event with a wrong token: Mixpanel's /track answers status 0 for the whole
        # request (keeping the others: maybe applied, as reported), and the client narrows
        # it down in halves to find the one.
        messages = [make_event("split", n) for n in range(16)]
        bad = messages[5].record.merged({"properties": {**messages[5].properties, "token": "x"}})
        messages[5] = type(messages[5])(bad)
        endpoint, limits, kept = "track", {}, 15
    with Emulator(**limits) as emulator:
        transport = transport_for(emulator, reports, linger=60.0, dead_letter_path=str(dead))
        emulator.stall()
        for message in messages:
            transport.send(message)
        assert transport.flush(0.05) != []  # the one take is made, its request held
        _held(emulator)
        left = transport.close(0.3)
        assert sorted(map(id, left)) == sorted(map(id, messages))
        emulator.release()
        time.sleep(QUIET)
        requests = emulator.stats()["requests"].get(endpoint, {})
        applied = len(emulator.records(endpoint))
    assert sum(requests.values()) == 1, requests  # the held request only: no half after it
    assert applied == kept  # by the held request: none of its records was sent again
    assert {(r.status, r.reason) for r in reports} == {(DeliveryStatus.FAILED, DURING)}
    assert len(reports) == len(messages)
    lines = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert len(lines) == len(messages)
