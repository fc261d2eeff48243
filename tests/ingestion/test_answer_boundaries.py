"""Answers at the edge of their class, over real sockets: each one is classified as the
module table says, and no record is reported ACCEPTED that Mixpanel may not have imported.

Written from a mutation audit: each test here failed on a one-token change to the client
that every other test let through (a 408 answered like a 410, a status "0" taken for an answer
that is not Mixpanel's). The index one past the last record is a case of
``test_ingestion_audit.py``'s accounting test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient

from .conftest import RecordingWait, event
from .scripted import ScriptedServer, answer, raw
from .test_client_audit import client_for

pytestmark = pytest.mark.integration


def test_a_408_is_retried_and_the_record_delivered(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    """408 Request Timeout says the server gave up waiting for the request, not that the
    record is wrong: taken for a refusal, the record would be REJECTED and never sent again."""
    mixpanel_emulator.client.fail_next(1, 408)
    message = event()
    wait = RecordingWait()
    result = client.send_batch("track", [message], wait=wait)
    assert [(r.status, r.attempts) for r in result.reports] == [(DeliveryStatus.ACCEPTED, 2)]
    assert len(wait.delays) == 1
    assert mixpanel_emulator.client.insert_ids("track") == [message.insert_id]
    assert mixpanel_emulator.client.stats()["requests"]["track"] == {"408": 1, "200": 1}


def test_a_status_0_as_a_string_from_track_is_a_rejection_not_a_retry(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """``{"status": "0"}`` is Mixpanel's refusal as much as ``{"status": 0}``: taken for an
    answer that is not Mixpanel's, the record was resent until the retry budget ran out, then
    reported FAILED (and resent from the dead letters) instead of REJECTED with the reason."""
    mixpanel = scripted(answer(raw("200 OK", b'{"status": "0", "error": "bad token"}')))
    client = client_for(mixpanel)
    wait = RecordingWait()
    result = client.send_batch("track", [event()], wait=wait)
    assert [(r.status, r.reason, r.attempts) for r in result.reports] == [
        (DeliveryStatus.REJECTED, "bad token", 1)
    ]
    assert wait.delays == []
    assert len(mixpanel.requests) == 1
