"""A ``status: 0`` that arrives once the retry budget is spent is not narrowed down: the
request is rejected whole, and the reason counts the records of that request.

Without the budget check of ``split_or_reject_unnamed`` (a mutant dropping it survived every
test), the batch was split anyway and each half, finding no budget left, was rejected on its
own: the same statuses, but every reason said "some of the 2 records of this request" of a
request of 4, which misstates what Mixpanel was sent and judged.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.settings import MixpanelSettings

from .conftest import TOKEN, event
from .scripted import Answer, ScriptedServer, answer, raw

REFUSED = raw("200 OK", b'{"status": 0, "error": "some records failed validation"}')
ACCEPTED = raw("200 OK", b'{"status": 1, "error": null}')


def late(seconds: float, data: bytes) -> Answer:
    """Writes ``data`` after ``seconds``: an answer that comes after the budget is spent."""
    write = answer(data)

    def slow(sock: socket.socket) -> None:
        time.sleep(seconds)
        write(sock)

    return slow


def test_a_status_0_after_the_budget_rejects_the_request_whole(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """The first attempt is bounded by its timeouts only, so its answer may come after the
    0.3 s budget: nothing is sent again, and the one refusal covers the 4 records."""
    server = scripted(late(0.6, REFUSED), answer(ACCEPTED))
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    client = IngestionClient(settings, HttpOptions(retry_budget=0.3, read_timeout=5.0))

    result = client.send_batch("track", [event() for _ in range(4)])

    assert len(server.requests) == 1
    assert [r.status for r in result.reports] == [DeliveryStatus.REJECTED] * 4
    for report in result.reports:
        reason = report.reason or ""
        assert "some of the 4 records of this request" in reason
        assert "the retry budget ran out before the refused records were found" in reason
    assert len(result.outcomes) == 1


def test_a_half_the_budget_leaves_unsent_says_its_records_may_have_been_applied(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """The status 0 comes with a sliver of the 1 s budget left: too little for a half. Each
    half, a single event, is rejected unsent, and, as one of the request Mixpanel kept the
    valid records of, may have been applied (it said "some of the 1 records of this
    request", and a record alone was taken for the one refused; review R56 F1)."""
    server = scripted(late(0.85, REFUSED), answer(ACCEPTED))
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    client = IngestionClient(settings, HttpOptions(retry_budget=1.0, read_timeout=5.0))

    result = client.send_batch("track", [event() for _ in range(2)])

    assert len(server.requests) == 1
    assert [(r.status, r.maybe_applied) for r in result.reports] == [
        (DeliveryStatus.REJECTED, True)
    ] * 2
    for report in result.reports:
        reason = report.reason or ""
        assert "some of the records of the request this record was sent in" in reason
        assert "the retry budget ran out before the refused records were found" in reason
