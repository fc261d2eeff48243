"""A pooled keep-alive connection the server closed before answering: an event's request is
made again at once on a new connection, not counted as an attempt (a profile update's is
left to the retry policy); over real sockets.

A server closes a connection it holds idle (its keep-alive timeout, a request count) while
the next request is on its way. That cost a full attempt and a backoff, and failed the
records outright under ``max_retries = 0`` or ``retry_budget = 0`` (what the drop-in
``Consumer(retry_limit=0)`` sets).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.frozen import freeze
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.ingestion.call import MAYBE_APPLIED
from mixpanel_core.messages import Endpoint, Event, GroupUpdate, PeopleUpdate
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

from .conftest import TOKEN, event, profile
from .scripted import ScriptedServer, answer, raw

pytestmark = pytest.mark.integration

OK = answer(raw("200 OK", b'{"status": 1, "error": null}'))


def close_unanswered(sock: socket.socket) -> None:
    """Closes the connection without a byte of answer."""
    raise ConnectionAbortedError  # ends the handler, which closes the socket


ANSWER_CUT_SHORT = answer(raw("200 OK", b'{"status": 1, "error": null}')[:-5], reset=True)
"""The status line and headers, part of the body, then a reset: the request may have been
processed."""


def continue_then_close(sock: socket.socket) -> None:
    """An interim ``100 Continue``, then the connection closed: the request was read."""
    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    raise ConnectionAbortedError  # ends the handler, which closes the socket


def client_for(server: ScriptedServer, **options: Any) -> IngestionClient:
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    return IngestionClient(settings, HttpOptions(backoff_base=0.001, backoff_cap=0.002, **options))


@pytest.mark.parametrize("options", [{"max_retries": 0}, {"retry_budget": 0}])
def test_a_reused_connection_closed_before_the_answer_is_retried_at_once(
    scripted: Callable[..., ScriptedServer], options: dict[str, Any]
) -> None:
    server = scripted(OK, close_unanswered, OK)
    client = client_for(server, **options)

    first = client.send_batch("track", [event()])
    second = client.send_batch("track", [event()])

    assert first.ok
    (report,) = second.reports
    assert (report.status, report.attempts) == (DeliveryStatus.ACCEPTED, 1)
    assert len(server.requests) == 3
    assert server.requests[1][1] == server.requests[2][1], "the very same body"


def test_the_retry_at_once_waits_for_no_backoff(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(OK, close_unanswered, OK)
    client = client_for(server)
    waits: list[float] = []

    client.send_batch("track", [event()])
    result = client.send_batch("track", [event()], wait=waits.append)

    assert result.ok
    assert waits == []
    assert result.reports[0].attempts == 1


def test_a_new_connection_closed_before_the_answer_is_left_to_the_retry_policy(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Not a stale pooled connection: the server took the request and closed."""
    server = scripted(close_unanswered, OK)
    client = client_for(server, max_retries=0)

    (report,) = client.send_batch("track", [event()]).reports

    assert (report.status, report.attempts) == (DeliveryStatus.FAILED, 1)
    assert len(server.requests) == 1


def test_an_answer_cut_short_on_a_reused_connection_is_not_resent_at_once(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Part of the answer arrived: the request may have been processed."""
    server = scripted(OK, ANSWER_CUT_SHORT, OK)
    client = client_for(server, max_retries=0)

    client.send_batch("track", [event()])
    (report,) = client.send_batch("track", [event()]).reports

    assert (report.status, report.attempts) == (DeliveryStatus.FAILED, 1)
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "cut_short",
    [
        answer(b"HTTP/1.1 20", reset=True),
        answer(b"H", reset=True),
        continue_then_close,
    ],
    ids=["part-of-the-status-line", "one-byte", "100-continue"],
)
def test_an_answer_cut_short_before_its_status_line_is_not_resent_at_once(
    scripted: Callable[..., ScriptedServer], cut_short: Any
) -> None:
    """Any byte of an answer means the server read the request (and may have applied a
    profile $add): not the idle close the at-once resend is for."""
    server = scripted(OK, cut_short, OK)
    client = client_for(server, max_retries=0)

    client.send_batch("engage", [event()])
    (report,) = client.send_batch("engage", [event()]).reports

    assert (report.status, report.attempts) == (DeliveryStatus.FAILED, 1)
    assert len(server.requests) == 2, "sent once: not again at once"


def test_a_request_made_again_at_once_keeps_the_doubt_of_the_try_before_it(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """The server read the first try whole before it closed the connection: it may have
    applied it, whatever the try made again at once is answered (here a 503, with no retry
    left). Only a network error carried that doubt before (review R51 F1)."""
    server = scripted(OK, close_unanswered, answer(raw("503 Service Unavailable", b"down")))
    client = client_for(server, max_retries=0)
    assert client.send_batch("track", [event()]).ok

    (report,) = client.send_batch("track", [event()]).reports

    assert (report.status, report.http_status, report.attempts) == (DeliveryStatus.FAILED, 503, 1)
    assert report.maybe_applied
    assert (report.reason or "").endswith(MAYBE_APPLIED)
    assert len(server.requests) == 3


@pytest.mark.parametrize("endpoint", ["engage", "groups"])
def test_a_profile_update_on_a_reused_connection_closed_unanswered_is_left_to_the_retries(
    scripted: Callable[..., ScriptedServer], endpoint: Endpoint
) -> None:
    """The server may have read and applied it before closing: made again at once, an $add
    was applied twice, under max_retries = 0 too (review R57 F1). Left to the retry policy
    like any request that may have been received: one attempt counted, a backoff, and
    ACCEPTED at the second attempt."""
    server = scripted(OK, close_unanswered, OK)
    client = client_for(server)
    update = profile(GroupUpdate if endpoint == "groups" else PeopleUpdate)
    assert client.send_batch(endpoint, [update]).ok
    waits: list[float] = []

    (report,) = client.send_batch(endpoint, [update], wait=waits.append).reports

    assert (report.status, report.attempts) == (DeliveryStatus.ACCEPTED, 2)
    assert len(waits) == 1, "a backoff before the retry"
    assert len(server.requests) == 3


def _event_without(name: str) -> Event:
    record = dict(event().record["properties"])
    del record[name]
    return Event(freeze({"event": "signup", "properties": record}, Event.kind))


@pytest.mark.parametrize("missing", ["$insert_id", "time"])
def test_an_event_mixpanel_would_count_twice_is_not_made_again_at_once(
    scripted: Callable[..., ScriptedServer], missing: str
) -> None:
    """Without an $insert_id, or without a time (Mixpanel stamps each copy with its arrival),
    an event sent again is counted again: like a profile update, it is left to the retry
    policy, here none (max_retries = 0, the drop-in's retry_limit=0, which sent it twice and
    returned as a success: review R58 F2)."""
    server = scripted(OK, close_unanswered, OK)
    client = client_for(server, max_retries=0)
    assert client.send_batch("track", [event()]).ok

    (report,) = client.send_batch("track", [event(), _event_without(missing)]).reports[1:]

    assert (report.status, report.attempts) == (DeliveryStatus.FAILED, 1)
    assert report.maybe_applied
    assert len(server.requests) == 2, "sent once"


def test_an_event_whose_time_is_beyond_a_float_is_not_made_again_at_once(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """A time of 401 digits (JSON has no bound on integers) made the check of whether the
    request may be sent again at once raise OverflowError out of the send, and the other
    event of the request got no report (review R60 F2). It is no time Mixpanel keeps:
    left to the retry policy."""
    server = scripted(OK, close_unanswered, OK)
    client = client_for(server, max_retries=0)
    assert client.send_batch("track", [event()]).ok
    huge = b'{"event":"e","properties":{"token":"t","distinct_id":"u","$insert_id":"a1","time":1'
    records = [(None, event().json()), (None, huge + b"0" * 400 + b"}}")]

    reports = client.send_encoded("track", records).reports

    assert [(r.status, r.attempts) for r in reports] == [(DeliveryStatus.FAILED, 1)] * 2
    assert len(server.requests) == 2, "sent once"


def test_an_answer_after_a_request_made_again_at_once_is_redacted_as_any(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """A 503 page after the try made again at once quotes the API secret where the reason's
    quote of the page ends: redacted, as without the resend. The doubt was added before
    redaction, which then fell back to the page's raw text and showed the secret's first
    nine characters (review R52 F1)."""
    secret = "S3cr3tValueABCDEFGHIJKLMNOP0123456789"
    page = ("x" * 491 + secret + " more text").encode()  # the quote ends 9 characters in
    server = scripted(OK, close_unanswered, answer(raw("503 Service Unavailable", page)))
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN, api_secret=Secret(secret))
    client = IngestionClient(settings, HttpOptions(max_retries=0))
    assert client.send_batch("track", [event()]).ok

    (report,) = client.send_batch("track", [event()]).reports

    reason = report.reason or ""
    assert secret[:9] not in reason
    assert "HTTP 503" in reason
    assert report.maybe_applied
    assert len(server.requests) == 3
