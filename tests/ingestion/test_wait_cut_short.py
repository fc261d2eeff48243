"""The client's ``wait`` may stop a call: ``False`` means the wait was cut short.

The call then ends as it does at a passed deadline: the request whose retry was cut short is
FAILED with its last error, no further request starts, and what the call settled before keeps
its outcome (an accepted record reported FAILED would be sent again: a profile ``$add``
applied twice). Over real sockets: the emulator, or a scripted server where the test needs
one answer after another.

So that a caller stopping a call from another thread (a buffered sender's ``close``) knows
what the call settled so far, ``send_encoded`` announces to ``on_settled`` every record of the
call, once, as soon as its fate is known, with the status it ends with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion import HttpOptions, IngestionClient, Outcome, Wait
from mixpanel_core.messages import Endpoint, Message
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, event, import_event, profile, settings_for
from .scripted import ScriptedServer, answer, raw
from .test_client_audit import client_for

pytestmark = pytest.mark.integration

ACCEPTED, FAILED, REJECTED = DeliveryStatus.ACCEPTED, DeliveryStatus.FAILED, DeliveryStatus.REJECTED


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


# -- what the call announces settled while it runs ---------------------------------------

TOO_LARGE = answer(raw("413 Payload Too Large", b'{"error": "request too large"}'))
OK = answer(raw("200 OK", b'{"status": 1, "error": null}'))
STATUS_0 = answer(raw("200 OK", b'{"status": 0, "error": "some records are invalid"}'))
BUSY = answer(raw("503 Service Unavailable", b'{"error": "busy"}'))
REFUSED = answer(raw("401 Unauthorized", b'{"error": "Invalid credentials"}'))
IMPORTED_2 = answer(raw("200 OK", b'{"code": 200, "num_records_imported": 2, "status": "OK"}'))


class Announcements:
    """An ``on_settled`` that keeps each announcement with the requests sent by then."""

    def __init__(self, server: ScriptedServer) -> None:
        self._server = server
        self.made: list[tuple[int, list[Outcome]]] = []

    def __call__(self, outcomes: Sequence[Outcome]) -> None:
        self.made.append((len(self._server.requests), list(outcomes)))

    def statuses(self, messages: list[Message]) -> list[tuple[Message | None, DeliveryStatus]]:
        """Each record announced with its status, in the order of ``messages``: a record
        announced twice is there twice."""
        position = {id(message): n for n, message in enumerate(messages)}
        told = [(item[0], o.status) for _, made in self.made for o in made for item in o.items]
        return sorted(told, key=lambda pair: position[id(pair[0])])

    def requests_before(self) -> list[int]:
        """The requests the server had received when each announcement was made."""
        return [requests for requests, _ in self.made]


def announced_call(
    server: ScriptedServer,
    endpoint: Endpoint,
    messages: list[Message],
    wait: Wait,
    options: HttpOptions = FAST,
    **settings: Any,
) -> tuple[Announcements, list[DeliveryReport]]:
    """``send_encoded`` with ``on_settled``; the reports it returned, or raised with a 401."""
    client = client_for(server, options, **settings)
    announcements = Announcements(server)
    items = client.encode(endpoint, messages)
    try:
        result = client.send_encoded(endpoint, items, wait, on_settled=announcements)
    except AuthenticationError as error:
        return announcements, list(error.reports)
    return announcements, list(result.reports)


def test_an_accepted_request_is_announced_once_when_answered(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(OK)
    updates = [profile(n=i) for i in range(4)]
    told, reports = announced_call(server, "engage", updates, CutShort())
    assert (
        told.statuses(updates)
        == [(r.message, r.status) for r in reports]
        == [(u, ACCEPTED) for u in updates]
    )
    assert told.requests_before() == [1]


def test_a_413_split_two_levels_deep_announces_each_leaf_once_as_it_is_answered(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """8 records: 413, its first half 413 again, quarters accepted; the second half
    ``status: 0`` (profile updates: REJECTED together). Each leaf is announced as soon as it
    is answered, before the next request: what a buffered sender relies on to keep an accepted
    half when ``close`` gives up during a later one."""
    server = scripted(TOO_LARGE, TOO_LARGE, OK, OK, STATUS_0)
    # The second half smaller than the first, refused with 413: one as large would be split
    # without being sent (a server refuses it too).
    updates = [profile(n=100_000 + i) for i in range(4)] + [profile(n=i) for i in range(4)]
    told, reports = announced_call(server, "engage", updates, CutShort())
    assert told.statuses(updates) == [(r.message, r.status) for r in reports]
    assert [r.status for r in reports] == [ACCEPTED] * 4 + [REJECTED] * 4
    assert told.requests_before() == [3, 4, 5]
    assert [sum(len(o.items) for o in outcomes) for _, outcomes in told.made] == [2, 2, 4]


def test_a_track_status_0_split_announces_each_record_once(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """``status: 0`` for 4 events: the halves again, the second ``status: 0`` once more, its
    quarters one refused and one accepted. The first request's answer announces nothing."""
    server = scripted(STATUS_0, OK, STATUS_0, STATUS_0, OK)
    events = [event(n=i) for i in range(4)]
    told, reports = announced_call(server, "track", events, CutShort())
    assert told.statuses(events) == [(r.message, r.status) for r in reports]
    assert [r.status for r in reports] == [ACCEPTED, ACCEPTED, REJECTED, ACCEPTED]
    assert told.requests_before() == [2, 4, 5]


def test_a_401_in_the_second_half_of_a_split_announces_the_rest_of_the_call_once(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Two batches of four: the first split on 413, its first half imported, its second
    refused; the second batch is not sent. The accepted half is announced when answered; the
    refused half and the unsent batch once, when refused."""
    server = scripted(TOO_LARGE, IMPORTED_2, REFUSED)
    options = attrs.evolve(FAST, max_batch_records=4)
    events = [import_event() for _ in range(8)]
    told, reports = announced_call(
        server, "import", events, CutShort(), options, api_secret=Secret("s3cret")
    )
    assert told.statuses(events) == [(r.message, r.status) for r in reports]
    assert [r.status for r in reports] == [ACCEPTED] * 2 + [FAILED] * 6
    assert told.requests_before() == [2, 3]


def test_a_cut_wait_announces_the_accepted_half_the_cut_one_and_the_unsent_rest_once(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Ten records, batches of eight and two: 413, the first half accepted, the second half
    503 and its wait cut short; the batch of two is not sent."""
    server = scripted(TOO_LARGE, OK, BUSY)
    options = attrs.evolve(FAST, max_batch_records=8)
    updates = [profile(n=i) for i in range(10)]
    told, reports = announced_call(server, "engage", updates, CutShort(), options)
    assert told.statuses(updates) == [(r.message, r.status) for r in reports]
    assert [r.status for r in reports] == [ACCEPTED] * 4 + [FAILED] * 6
    assert told.requests_before() == [2, 3, 3]
    assert len(server.requests) == 3
