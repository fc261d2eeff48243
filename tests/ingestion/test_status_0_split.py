"""A ``status: 0`` for several records, over real sockets: Mixpanel (the emulator) keeps the
valid records of the request and names none it refused. Events are found by sending the halves
again; profile updates are not resent, and their rejection says what Mixpanel may have kept."""

from __future__ import annotations

import attrs
import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.frozen import freeze
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.messages import Alias, Event, PeopleUpdate

from .conftest import FAST, TOKEN, event, profile, settings_for

pytestmark = pytest.mark.integration

BAD_TIME = "yesterday"
"""A /track event time Mixpanel refuses: not seconds or milliseconds since the epoch. (One
older than 5 days would not do: Mixpanel drops it silently and answers success.)"""


def test_status_0_for_several_track_events_rejects_only_the_refused_ones(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    """The halves are sent again until each refused event stands alone: it alone is REJECTED
    with Mixpanel's reason, the others ACCEPTED and counted once (by $insert_id)."""
    messages = [event(n=i) for i in range(40)]
    messages[7] = event(time=BAD_TIME)
    messages[31] = event(token="not-a-project-token")

    result = client.send_batch("track", messages)

    refused = {7, 31}
    expected = [
        DeliveryStatus.REJECTED if i in refused else DeliveryStatus.ACCEPTED for i in range(40)
    ]
    assert [r.status for r in result.reports] == expected
    assert "properties.time" in (result.reports[7].reason or "")
    assert "token" in (result.reports[31].reason or "")
    assert all(r.http_status == 200 for r in result.reports)
    good = {m.insert_id for i, m in enumerate(messages) if i not in refused}
    stats = mixpanel_emulator.client.stats()
    assert set(mixpanel_emulator.client.insert_ids("track")) == good
    assert stats["unique_events"] == len(good), "resent events are counted once"
    assert stats["duplicate_events"] > 0, "the valid events of a refused request were resent"
    assert stats["rejected"]["track"] >= 2


def test_status_0_for_several_profile_updates_rejects_the_request_saying_why(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    """An $add sent twice is applied twice: the request is not resent, every record is
    REJECTED, and the reason says that Mixpanel may have applied the valid ones."""
    updates = [profile(n=i) for i in range(5)]
    bad_token = {"$token": "not-a-project-token", "$distinct_id": "u", "$add": {"n": 1}}
    updates[2] = PeopleUpdate(freeze(bad_token, PeopleUpdate.kind))

    result = client.send_batch("engage", updates)

    assert [r.status for r in result.reports] == [DeliveryStatus.REJECTED] * 5
    reason = result.reports[0].reason or ""
    assert "token" in reason, "Mixpanel's own message is kept"
    assert "may have applied the valid ones" in reason
    assert "which cannot be told" in reason
    assert "$add twice" in reason
    assert mixpanel_emulator.client.stats()["requests"]["engage"] == {"200": 1}, "not resent"
    assert len(mixpanel_emulator.client.records("engage")) == 4, "Mixpanel kept the valid ones"
    # Said by the flag too, which a replay of dead letters is screened by (review R54 M1).
    assert all(r.maybe_applied for r in result.reports)


def test_status_0_for_one_profile_update_says_it_was_not_applied(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    """A record alone in a request Mixpanel refused is the one it refused: not applied."""
    bad_token = {"$token": "not-a-project-token", "$distinct_id": "u", "$add": {"n": 1}}

    result = client.send_batch("engage", [PeopleUpdate(freeze(bad_token, PeopleUpdate.kind))])

    [report] = result.reports
    assert report.status is DeliveryStatus.REJECTED
    assert not report.maybe_applied
    assert mixpanel_emulator.client.records("engage") == []


def test_status_0_for_track_events_without_an_insert_id_is_not_resent(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    """An alias carries no $insert_id: resent, it would be counted twice."""
    alias = Alias(
        freeze(
            {
                "event": "$create_alias",
                "properties": {"distinct_id": "a", "alias": "b", "token": TOKEN},
            },
            Alias.kind,
        )
    )
    result = client.send_batch("track", [event(), alias, event(time=BAD_TIME)])

    assert [r.status for r in result.reports] == [DeliveryStatus.REJECTED] * 3
    assert "without an $insert_id would count them twice" in (result.reports[0].reason or "")
    assert mixpanel_emulator.client.stats()["requests"]["track"] == {"200": 1}


def test_status_0_splits_only_while_the_retry_budget_lasts(mixpanel_emulator: Emulator) -> None:
    client = IngestionClient(settings_for(mixpanel_emulator), attrs.evolve(FAST, retry_budget=0))
    messages: list[Event] = [event(), event(time=BAD_TIME), event()]

    result = client.send_batch("track", messages)

    assert [r.status for r in result.reports] == [DeliveryStatus.REJECTED] * 3
    assert "retry budget ran out" in (result.reports[0].reason or "")
    assert mixpanel_emulator.client.stats()["requests"]["track"] == {"200": 1}
