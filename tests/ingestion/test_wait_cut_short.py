"""The client's ``wait`` may stop a call: ``False`` means the wait was cut short.

The call then ends as it does at a passed deadline: the request whose retry was cut short is
FAILED with its last error, no further request starts, and what the call settled before keeps
its outcome (an accepted record reported FAILED would be sent again: a profile ``$add``
applied twice). Over real sockets: the emulator, or a scripted server where the test needs
one answer after another.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, event, profile, settings_for
from .scripted import ScriptedServer, answer, raw

pytestmark = pytest.mark.integration

ACCEPTED, FAILED = DeliveryStatus.ACCEPTED, DeliveryStatus.FAILED


class CutShort:
    """A ``wait`` that is cut short at once, as a buffered sender's is once ``close`` gives up."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, seconds: float) -> bool:
        self.calls += 1
        return False


def test_a_wait_cut_short_keeps_the_accepted_half_of_a_split_and_fails_the_other(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """413, then the first half is accepted, then the second half gets a 503 and its wait is
    cut short: the first half stays ACCEPTED, the second is FAILED saying the wait was cut
    short, and it is not sent again."""
    server = scripted(
        answer(raw("413 Payload Too Large", b'{"error": "request too large"}')),
        answer(raw("200 OK", b'{"status": 1, "error": null}')),
        answer(raw("503 Service Unavailable", b'{"error": "busy"}')),
    )
    # max_retries bounds the old behaviour (the cut wait ignored) to a few requests.
    client = IngestionClient(
        MixpanelSettings(api_host=server.base_url, token=TOKEN), attrs.evolve(FAST, max_retries=3)
    )
    updates = [profile(n=i) for i in range(8)]
    wait = CutShort()

    result = client.send_batch("engage", updates, wait=wait)

    assert [r.status for r in result.reports] == [ACCEPTED] * 4 + [FAILED] * 4
    assert [r.message for r in result.reports] == updates
    for report in result.failed:
        assert report.reason is not None
        # Two attempts: the 413 of the whole request counts for each of its halves.
        assert report.reason.startswith(
            "gave up after 2 attempt(s) (the wait before the next attempt was cut short"
        )
        assert report.http_status == 503
    assert wait.calls == 1
    assert len(server.requests) == 3, "no request is sent after the wait was cut short"


def test_a_wait_cut_short_starts_no_further_request_of_the_call(
    mixpanel_emulator: Emulator,
) -> None:
    """Three requests (two records each); the first gets a 503 and its wait is cut short: it
    is FAILED with its last error, the other two are FAILED unsent, and the emulator saw one
    request and stored nothing."""
    client = IngestionClient(
        settings_for(mixpanel_emulator), attrs.evolve(FAST, max_batch_records=2)
    )
    events = [event(n=i) for i in range(6)]
    mixpanel_emulator.client.fail_next(1, 503)

    result = client.send_batch("track", events, wait=CutShort())

    assert [r.status for r in result.reports] == [FAILED] * 6
    first, later = result.reports[:2], result.reports[2:]
    assert all("cut short" in (r.reason or "") and r.http_status == 503 for r in first)
    assert all(
        r.reason == "not sent: the call was stopped first (a wait before a retry was cut short)"
        for r in later
    )
    assert all(r.attempts == 0 for r in later)
    assert mixpanel_emulator.client.stats()["requests"] == {"track": {"503": 1}}
    assert mixpanel_emulator.client.records("track") == []


@pytest.mark.parametrize("goes_on", [None, True], ids=["None", "True"])
def test_a_wait_returning_anything_but_false_goes_on(
    mixpanel_emulator: Emulator, goes_on: bool | None
) -> None:
    """``time.sleep`` returns ``None``: the call retries after it as always (so does ``True``)."""
    client = IngestionClient(settings_for(mixpanel_emulator), FAST)
    mixpanel_emulator.client.fail_next(1, 503)

    result = client.send_batch("track", [event()], wait=lambda seconds: goes_on)

    assert [r.status for r in result.reports] == [ACCEPTED]
    assert result.reports[0].attempts == 2
