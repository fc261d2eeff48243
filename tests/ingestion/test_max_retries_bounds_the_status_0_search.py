"""``max_retries`` bounds the resends that look for the records a ``status: 0`` refused, as
docs/ingestion.md says: each half sent again is a retry of its records (review R75 F1).

Before, the count was never read on that path: with ``max_retries = 0`` a batch of 16 events
with one refused among them was sent 9 times, and its records reported after 5 attempts of a
request allowed no retry. The drop-in ``retry_limit=0`` said "the retry budget ran out", of
retries that were turned off.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import attrs
import pytest

from mixpanel_core.compat import MixpanelException
from mixpanel_core.compat_consumers import Consumer
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.settings import MixpanelSettings

from .conftest import FAST, TOKEN, event, settings_for
from .scripted import ScriptedServer, answer, raw

REFUSED = raw("200 OK", b'{"status": 0, "error": "some records failed validation"}')
ACCEPTED = raw("200 OK", b'{"status": 1, "error": null}')
BUSY = raw("503 Service Unavailable", b"busy")
TOO_LARGE = raw("413 Payload Too Large", b"too large")


def sixteen_with_one_refused() -> list:  # type: ignore[type-arg]
    return [event(**({"token": "wrong-token"} if i == 5 else {})) for i in range(16)]


def track_requests(emulator: Emulator) -> int:
    return sum(emulator.stats()["requests"].get("track", {}).values())


@pytest.mark.integration
def test_max_retries_0_reports_a_status_0_batch_without_searching(
    mixpanel_emulator: Emulator,
) -> None:
    """One request, every record REJECTED after 1 attempt, saying the limit stopped the
    search and that Mixpanel may have applied the valid ones."""
    client = IngestionClient(settings_for(mixpanel_emulator), attrs.evolve(FAST, max_retries=0))

    result = client.send_batch("track", sixteen_with_one_refused())

    assert track_requests(mixpanel_emulator) == 1
    assert {(r.status, r.attempts, r.maybe_applied) for r in result.reports} == {
        (DeliveryStatus.REJECTED, 1, True)
    }
    reason = result.reports[0].reason or ""
    assert "some of the 16 records of this request" in reason
    assert "the limit of 0 retries does not allow" in reason
    assert "budget" not in reason


@pytest.mark.integration
def test_max_retries_bounds_how_often_a_record_is_sent_again(
    mixpanel_emulator: Emulator,
) -> None:
    """With 2: the halves of 8, then of 4, then the refused 4 are rejected whole: 5 requests,
    no record sent more than 3 times, and the 12 valid events outside that 4 accepted."""
    client = IngestionClient(settings_for(mixpanel_emulator), attrs.evolve(FAST, max_retries=2))

    result = client.send_batch("track", sixteen_with_one_refused())

    assert track_requests(mixpanel_emulator) == 5
    statuses = [r.status for r in result.reports]
    assert (
        statuses
        == [DeliveryStatus.ACCEPTED] * 4
        + [DeliveryStatus.REJECTED] * 4
        + [DeliveryStatus.ACCEPTED] * 8
    )
    assert max(r.attempts for r in result.reports) == 3
    rejected = result.reports[4]
    assert rejected.maybe_applied
    assert "the limit of 2 retries was reached before the refused records were found" in (
        rejected.reason or ""
    )


@pytest.mark.integration
def test_without_max_retries_the_search_still_finds_the_refused_event(
    mixpanel_emulator: Emulator,
) -> None:
    """Unset (the default), the search goes on until the refused event stands alone."""
    client = IngestionClient(settings_for(mixpanel_emulator), FAST)

    result = client.send_batch("track", sixteen_with_one_refused())

    assert track_requests(mixpanel_emulator) == 9
    rejected = [i for i, r in enumerate(result.reports) if r.status is DeliveryStatus.REJECTED]
    assert rejected == [5]


def test_a_retry_of_a_half_counts_with_the_half_itself(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """``max_retries = 1``: the half is the one retry of its records, so a 503 to it ends
    them FAILED at the limit instead of being retried (before: 4 requests)."""
    server = scripted(answer(REFUSED), answer(BUSY), answer(ACCEPTED))
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    client = IngestionClient(settings, attrs.evolve(FAST, max_retries=1))

    result = client.send_batch("track", [event(), event()])

    assert len(server.requests) == 3
    first, second = result.reports
    assert (first.status, second.status) == (DeliveryStatus.FAILED, DeliveryStatus.ACCEPTED)
    assert "(the limit of 1 retry)" in (first.reason or "")


def test_the_halves_of_a_413_within_the_search_count_too(
    scripted: Callable[..., ScriptedServer],
) -> None:
    """``max_retries = 1``: a half of the search answered 413 is not split into halves that
    would be its records' second resend; they are REJECTED unsent, as of the request
    Mixpanel refused in part, saying the limit stopped the search."""
    server = scripted(answer(REFUSED), answer(TOO_LARGE), answer(ACCEPTED))
    settings = MixpanelSettings(api_host=server.base_url, token=TOKEN)
    client = IngestionClient(settings, attrs.evolve(FAST, max_retries=1))

    # The first half larger: the second, smaller than the body the 413 refused, is sent whole.
    batch = [event(pad="x" * 200), event(pad="x" * 200), event(), event()]
    result = client.send_batch("track", batch)

    assert len(server.requests) == 3
    assert [(r.status, r.maybe_applied) for r in result.reports] == [
        (DeliveryStatus.REJECTED, True)
    ] * 2 + [(DeliveryStatus.ACCEPTED, False)] * 2
    reason = result.reports[0].reason or ""
    assert "some of the records of the request this record was sent in" in reason
    assert "the limit of 1 retry was reached" in reason


@pytest.mark.integration
def test_the_drop_in_retry_limit_0_names_the_limit_not_a_budget(
    mixpanel_emulator: Emulator,
) -> None:
    """``retry_limit=0`` turns retries off (and the budget with them): the reason says it was
    the limit, where it said "the retry budget ran out before the refused records were
    found"."""
    consumer = Consumer(api_host=mixpanel_emulator.base_url, retry_limit=0)
    records = [json.loads(m.json()) for m in sixteen_with_one_refused()]

    with pytest.raises(MixpanelException) as raised:
        consumer.send("events", json.dumps(records))

    assert track_requests(mixpanel_emulator) == 1
    reasons = {r.reason for r in raised.value.reports}
    assert len(reasons) == 1
    reason = reasons.pop() or ""
    assert "the limit of 0 retries does not allow" in reason
    assert "budget ran out" not in reason
