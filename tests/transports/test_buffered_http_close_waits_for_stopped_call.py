"""``close`` that stops a retry wait gives the thread time to settle that call.

The thread, stopped in its wait, has no request out: it settles the batch with Mixpanel's
last answer (a 503, "cut short"). On a loaded machine that step can take longer than the
50 ms ``close`` waits for the thread to end; ``close`` then waits up to ``_SETTLING_GRACE``
more for it. Without that wait, the batch was given up on as "during the request", with no
trace of the 503 that kept it from being delivered. Written from a mutation audit: removing
the wait failed no test, as the step is quick on an idle machine; here it is made slow.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import PeopleUpdate
from mixpanel_core.settings import MixpanelSettings
from transports.buffered_http import BufferedHttpOptions, BufferedHttpTransport

from ..ingestion.scripted import ScriptedServer, answer, raw

pytestmark = pytest.mark.integration

SLOW_SETTLING = 0.5
"""Seconds the thread takes, once its wait is cut short, before it settles the call: ten
times the 50 ms ``close`` gives a thread to end, a quarter of ``_SETTLING_GRACE``."""


def test_close_waits_for_a_slow_thread_to_settle_the_call_it_stopped(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    reports: list[DeliveryReport] = []
    record = {"$token": "emulator-token", "$distinct_id": "user-1", "$add": {"logins": 1}}
    update = PeopleUpdate(freeze(record, "people"))
    busy = answer(raw("503 Service Unavailable", b'{"error": "busy"}'))
    with ScriptedServer([busy]) as server:
        options = BufferedHttpOptions(
            backoff_base=10.0,  # a retry wait that outlasts close's timeout
            retry_budget=60.0,
            exit_timeout=0.0,
            dead_letter_path=str(dead),
        )
        settings = MixpanelSettings(api_host=server.base_url, token="emulator-token")
        transport = BufferedHttpTransport(settings, options, report=reports.append)
        sender = transport.sender
        waiting = threading.Event()
        wait = sender._loop._wait

        def slow_after_cut_short(seconds: float) -> bool:
            waiting.set()
            going_on = wait(seconds)
            if not going_on:
                time.sleep(SLOW_SETTLING)  # a loaded machine, between the stop and settling
            return going_on

        sender._loop._wait = slow_after_cut_short  # type: ignore[method-assign]
        transport.send(update)
        assert waiting.wait(10), "the sender never waited to retry"
        left = transport.close(0.2)
        thread = sender._thread
        assert thread is not None
        thread.join(10)
        assert not thread.is_alive()
    assert left == [update]
    assert [(r.message, r.status, r.http_status) for r in reports] == [
        (update, DeliveryStatus.FAILED, 503)
    ]
    reason = reports[0].reason or ""
    assert "cut short" in reason
    assert "busy" in reason
    lines = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert [(line["http_status"], line["reason"]) for line in lines] == [(503, reason)]
