"""A 401/403 in the middle of a split request: what Mixpanel accepted before it stays ACCEPTED.

A batch answered 413 (too large) is sent again in halves, and so is a ``/track`` batch answered
``status: 0`` for several events. When a later half is refused (401/403), the halves already
accepted were reported FAILED with it: sent again later, so counted twice, and a profile
``$add`` applied twice. Over real sockets: the scripted server of the first audit, playing
Mixpanel, answers each request in turn.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion import HttpOptions
from mixpanel_core.messages import PeopleUpdate
from mixpanel_core.secrets import Secret

from .conftest import RecordingWait, event, import_event, profile
from .scripted import ScriptedServer, answer, raw
from .test_client_audit import client_for

pytestmark = pytest.mark.integration

ACCEPTED, FAILED = DeliveryStatus.ACCEPTED, DeliveryStatus.FAILED

TOO_LARGE = answer(raw("413 Payload Too Large", b'{"code": 413, "error": "request too large"}'))
REFUSED = answer(raw("401 Unauthorized", b'{"error": "Invalid credentials"}'))
TRACK_OK = answer(raw("200 OK", b'{"status": 1, "error": null}'))
STATUS_0 = answer(raw("200 OK", b'{"status": 0, "error": "some events are invalid"}'))


def imported(records: int) -> Callable[[socket.socket], None]:
    body = f'{{"code": 200, "num_records_imported": {records}, "status": "OK"}}'
    return answer(raw("200 OK", body.encode()))


def records_in(request: tuple[bytes, bytes]) -> int:
    return request[1].count(b"%22distinct_id%22") + request[1].count(b'"distinct_id"')


def test_a_401_after_a_413_split_keeps_the_accepted_half_accepted(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """413, the first half imported, the second refused: the first half stays ACCEPTED, the
    refused half is FAILED with Mixpanel's answer, and the error still carries every report."""
    server = scripted(TOO_LARGE, imported(2), REFUSED)
    client = client_for(server, api_secret=Secret("s3cret"))
    messages = [import_event() for _ in range(4)]
    with pytest.raises(AuthenticationError) as caught:
        client.send_batch("import", messages, wait=RecordingWait())
    reports = caught.value.reports
    assert [r.status for r in reports] == [ACCEPTED, ACCEPTED, FAILED, FAILED]
    assert [r.message for r in reports] == messages
    assert [records_in(r) for r in server.requests] == [4, 2, 2]
    assert (reports[0].http_status, reports[0].attempts) == (200, 2)  # the 413, then this
    assert (reports[2].http_status, reports[2].reason) == (401, "Invalid credentials")
    assert "api secret" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_a_401_deep_in_a_split_keeps_every_accepted_quarter_and_sends_nothing_after(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Split twice: the first quarter accepted, the second refused; the second half of the
    batch is not sent (the credentials would be refused again) and says why."""
    server = scripted(TOO_LARGE, TOO_LARGE, imported(2), REFUSED)
    client = client_for(server, api_secret=Secret("s3cret"))
    messages = [import_event() for _ in range(8)]
    with pytest.raises(AuthenticationError) as caught:
        client.send_batch("import", messages, wait=RecordingWait())
    reports = caught.value.reports
    assert [r.status for r in reports] == [ACCEPTED] * 2 + [FAILED] * 6
    assert [r.message for r in reports] == messages
    assert [records_in(r) for r in server.requests] == [8, 4, 2, 2]
    assert [r.reason for r in reports[2:4]] == ["Invalid credentials"] * 2
    assert all("not sent" in (r.reason or "") for r in reports[4:])
    assert all(r.attempts == 0 for r in reports[4:])


def test_a_401_for_the_first_half_reports_the_second_half_unsent(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(TOO_LARGE, REFUSED)
    client = client_for(server, api_secret=Secret("s3cret"))
    with pytest.raises(AuthenticationError) as caught:
        client.send_batch("import", [import_event() for _ in range(4)], wait=RecordingWait())
    reports = caught.value.reports
    assert [r.status for r in reports] == [FAILED] * 4
    assert [r.reason for r in reports[:2]] == ["Invalid credentials"] * 2
    assert [r.attempts for r in reports] == [2, 2, 0, 0]
    assert all("not sent" in (r.reason or "") for r in reports[2:])
    assert len(server.requests) == 2


def test_a_401_after_a_split_of_profile_updates_keeps_the_applied_ones_accepted(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """An ``$add`` reported FAILED after Mixpanel applied it is applied again when resent."""
    server = scripted(TOO_LARGE, TRACK_OK, REFUSED)
    client = client_for(server)
    updates = [profile(PeopleUpdate, n) for n in range(4)]
    with pytest.raises(AuthenticationError) as caught:
        client.send_batch("engage", updates, wait=RecordingWait())
    reports = caught.value.reports
    assert [r.status for r in reports] == [ACCEPTED, ACCEPTED, FAILED, FAILED]
    assert "project token" in str(caught.value)


def test_a_401_in_the_split_of_a_later_request_keeps_everything_accepted_before_it(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """Two requests of four records, each split on 413: the first one's halves accepted, then
    the second one's first half accepted and its second half refused."""
    server = scripted(TOO_LARGE, imported(2), imported(2), TOO_LARGE, imported(2), REFUSED)
    options = HttpOptions(backoff_base=0.001, backoff_cap=0.002, max_batch_records=4)
    client = client_for(server, options, api_secret=Secret("s3cret"))
    # The second request smaller than the first: one as large as a body refused with 413 is
    # split without being sent (a server refuses it too).
    messages = [import_event(pad="x" * 50) for _ in range(4)] + [import_event() for _ in range(4)]
    with pytest.raises(AuthenticationError) as caught:
        client.send_batch("import", messages, wait=RecordingWait())
    reports = caught.value.reports
    assert [r.status for r in reports] == [ACCEPTED] * 6 + [FAILED] * 2
    assert [r.message for r in reports] == messages
    assert [records_in(r) for r in server.requests] == [4, 2, 2, 4, 2, 2]


def test_a_401_while_resending_halves_after_status_0_keeps_the_accepted_half(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """``/track`` ``status: 0`` for four events: the halves are sent again to find the refused
    ones; the first half is accepted, the second refused with 401. The accepted events stay
    ACCEPTED; the refused ones are FAILED (they carry an ``$insert_id``, so resending them
    later is safe whatever Mixpanel kept of the first request)."""
    server = scripted(STATUS_0, TRACK_OK, REFUSED)
    client = client_for(server)
    messages = [event() for _ in range(4)]
    with pytest.raises(AuthenticationError) as caught:
        client.send_batch("track", messages, wait=RecordingWait())
    reports = caught.value.reports
    assert [r.status for r in reports] == [ACCEPTED, ACCEPTED, FAILED, FAILED]
    assert [records_in(r) for r in server.requests] == [4, 2, 2]
    assert [r.http_status for r in reports] == [200, 200, 401, 401]
