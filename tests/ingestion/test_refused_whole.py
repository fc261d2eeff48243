"""A ``/track`` batch Mixpanel refuses whole (``status: 0``, naming no record) costs
O(log n) requests, not one per record; over real sockets, against the emulator.

A wrong project token, or a ``time`` that is no number, refuse every record: the search for the
refused records split such a batch down to single records, 3,999 requests for 2,000 events.
"""

from __future__ import annotations

import math

import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.ingestion import IngestionClient
from mixpanel_core.ingestion.narrowing import WHOLLY_REFUSED

from .conftest import event

pytestmark = pytest.mark.integration

BAD_TIME = "yesterday"
"""A /track event time Mixpanel refuses (one older than 5 days it drops silently)."""


def track_requests(emulator: Emulator) -> int:
    return sum(emulator.client.stats()["requests"]["track"].values())


@pytest.mark.parametrize(
    "refused", [{"token": "not-a-project-token"}, {"time": BAD_TIME}], ids=["token", "bad-time"]
)
def test_a_batch_refused_whole_costs_logarithmically_many_requests(
    mixpanel_emulator: Emulator, client: IngestionClient, refused: dict[str, object]
) -> None:
    messages = [event(**refused) for _ in range(2000)]

    result = client.send_batch("track", messages)

    assert {r.status for r in result.reports} == {DeliveryStatus.REJECTED}
    requests = track_requests(mixpanel_emulator)
    # Two per halving, and a part too small for the rule searched whole (2 * 2 * 16).
    assert requests <= 2 * math.ceil(math.log2(2000)) + 4 * WHOLLY_REFUSED, f"{requests}"
    reason = result.reports[-1].reason or ""
    assert "were all refused too, so these were not sent again one by one" in reason


def test_refused_records_spread_out_are_each_found(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    """Never two refused records in a row of a half: every valid record is ACCEPTED."""
    refused = {3, 20, 45, 61}
    messages = [event(time=BAD_TIME) if i in refused else event() for i in range(64)]

    result = client.send_batch("track", messages)

    assert [r.status for r in result.reports] == [
        DeliveryStatus.REJECTED if i in refused else DeliveryStatus.ACCEPTED for i in range(64)
    ]
    good = {m.insert_id for i, m in enumerate(messages) if i not in refused}
    assert set(mixpanel_emulator.client.insert_ids("track")) == good


@pytest.mark.parametrize("run", [1, 3], ids=["every other refused", "three in four refused"])
def test_dense_refusals_by_chance_still_find_every_valid_record(
    mixpanel_emulator: Emulator, client: IngestionClient, run: int
) -> None:
    """Runs of ``run`` refused records, then a valid one: no half of 16 or more is wholly
    refused, so every valid record is found and ACCEPTED. (A half of two or more refused by
    chance, ``[old, old | old, valid]``, stopped the search before, and the valid record
    Mixpanel stored was reported REJECTED.)"""
    refused = {i for i in range(128) if i % (run + 1) < run}
    messages = [event(time=BAD_TIME) if i in refused else event() for i in range(128)]

    result = client.send_batch("track", messages)

    assert [r.status for r in result.reports] == [
        DeliveryStatus.REJECTED if i in refused else DeliveryStatus.ACCEPTED for i in range(128)
    ]


def test_a_second_half_after_a_wholly_refused_first_is_rejected_whole(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    """The first half (32) all refused, the second refused too: the second is not searched
    one by one; its reports say that Mixpanel may have applied its valid records (it did)."""
    refused = set(range(32)) | {40}
    messages = [event(time=BAD_TIME) if i in refused else event() for i in range(64)]

    result = client.send_batch("track", messages)

    assert [r.status for r in result.reports] == [DeliveryStatus.REJECTED] * 64
    assert "may have applied the valid ones" in (result.reports[33].reason or "")
    assert "properties.time" in (result.reports[0].reason or "")
    kept = {messages[i].insert_id for i in range(32, 64) if i not in refused}
    assert set(mixpanel_emulator.client.insert_ids("track")) == kept
