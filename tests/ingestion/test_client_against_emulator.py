"""The ingestion client over real sockets against the emulator: retries, splits, refusals."""

from __future__ import annotations

import attrs
import pytest

from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import AuthenticationError
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.messages import GroupUpdate
from mixpanel_core.secrets import Secret

from .conftest import FAST, TOKEN, RecordingWait, event, import_event, profile, settings_for

pytestmark = pytest.mark.integration


def test_bursts_of_429_and_500_lose_nothing_and_duplicate_nothing(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    mixpanel_emulator.client.fail_fraction(0.5, (429, 500, 502, 503), seed=3)
    messages = [event(n=i) for i in range(3000)]
    wait = RecordingWait()
    for start in range(0, 3000, 100):
        result = client.send_batch("track", messages[start : start + 100], wait=wait)
        assert result.ok
    sent = {m.insert_id for m in messages}
    received = mixpanel_emulator.client.insert_ids("track")
    assert set(received) == sent
    assert len(received) == len(sent)
    assert wait.delays  # the faults really happened


def test_429_follows_the_rate_limit_schedule_and_honours_retry_after(
    mixpanel_emulator: Emulator,
) -> None:
    client = IngestionClient(settings_for(mixpanel_emulator), HttpOptions())
    mixpanel_emulator.client.fail_next(1, 429)
    mixpanel_emulator.client.fail_next(1, 429, retry_after=30)
    wait = RecordingWait()
    result = client.send_batch("track", [event()], wait=wait)
    assert result.ok
    assert result.reports[0].attempts == 3
    assert 1.0 <= wait.delays[0] <= 2.0  # about 2 s, with jitter
    assert wait.delays[1] >= 30.0


def test_strict_400_rejects_exactly_the_failed_records_and_delivers_the_rest(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    good = [import_event() for _ in range(4)]
    bad_time = import_event(time=1000)  # before 1971
    bad_id = import_event(distinct_id="undefined")
    messages = [good[0], bad_time, good[1], good[2], bad_id, good[3]]
    result = client.send_batch("import", messages)
    assert [r.status for r in result.reports] == [
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.REJECTED,
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.ACCEPTED,
        DeliveryStatus.REJECTED,
        DeliveryStatus.ACCEPTED,
    ]
    assert result.reports[1].field == "properties.time"
    assert result.reports[4].field == "properties.distinct_id"
    assert sorted(mixpanel_emulator.client.insert_ids("import")) == sorted(
        m.insert_id for m in good
    )
    assert mixpanel_emulator.client.stats()["requests"]["import"] == {"400": 1}


def test_consecutive_batches_reuse_one_keep_alive_connection(
    mixpanel_emulator: Emulator,
) -> None:
    """Connection reuse: 20 requests, to two endpoints and with /import's auth, one handshake."""
    settings = settings_for(mixpanel_emulator, api_secret=Secret("emulator-secret"))
    client = IngestionClient(settings, FAST)
    for n in range(20):
        endpoint = "track" if n % 2 else "import"
        batch = [event() if n % 2 else import_event() for _ in range(5)]
        assert client.send_batch(endpoint, batch).ok
    stats = mixpanel_emulator.stats()  # in-process: opens no connection of its own
    assert stats["requests"] == {"track": {"200": 10}, "import": {"200": 10}}
    assert stats["connections"] == 1


def test_status_0_on_track_is_a_rejection_not_a_retry(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    wrong_token = event(token="not-a-project-token")
    result = client.send_batch("track", [wrong_token])
    assert result.rejected
    assert result.reports[0].attempts == 1


def test_413_splits_until_each_half_fits() -> None:
    with Emulator(max_body_bytes=20_000) as emulator:
        options = attrs.evolve(FAST, max_batch_bytes=1_000_000)
        client = IngestionClient(settings_for(emulator), options)
        messages = [import_event(padding="p" * 400) for _ in range(300)]
        result = client.send_batch("import", messages)
        assert result.ok
        assert sorted(emulator.client.insert_ids("import")) == sorted(m.insert_id for m in messages)
        assert "413" in emulator.client.stats()["requests"]["import"]


def test_a_single_record_too_large_for_the_server_is_rejected(client: IngestionClient) -> None:
    with Emulator(max_body_bytes=2_000) as emulator:
        client = IngestionClient(settings_for(emulator), FAST)
        result = client.send_batch("import", [import_event(padding="p" * 5_000)])
        assert result.rejected[0].http_status == 413


def test_401_is_fatal_names_the_credential_kind_and_never_the_secret(
    mixpanel_emulator: Emulator,
) -> None:
    settings = settings_for(
        mixpanel_emulator,
        service_account_username="sa-user",
        service_account_secret=Secret("not-the-secret-xyz"),
        project_id="12345",
    )
    client = IngestionClient(settings, FAST)
    wait = RecordingWait()
    with pytest.raises(AuthenticationError) as caught:
        client.send_batch("import", [import_event(), import_event()], wait=wait)
    error = caught.value
    assert "service account 'sa-user'" in str(error)
    assert "not-the-secret-xyz" not in str(error)
    assert "not-the-secret-xyz" not in repr(error.reports)
    assert [r.status for r in error.reports] == [DeliveryStatus.FAILED] * 2
    assert wait.delays == []  # no retry
    assert mixpanel_emulator.client.stats()["requests"]["import"] == {"401": 1}


def test_403_wrong_project_is_fatal(mixpanel_emulator: Emulator) -> None:
    settings = settings_for(
        mixpanel_emulator,
        service_account_username="sa-user",
        service_account_secret=Secret("sa-secret"),
        project_id="999",
    )
    with pytest.raises(AuthenticationError, match="HTTP 403"):
        IngestionClient(settings, FAST).send_batch("import", [import_event()])


def test_every_import_credential_kind_is_accepted(mixpanel_emulator: Emulator) -> None:
    """Each kind is proven by the one that was sent: the settings and the records carry a token
    this project does not know (refused on its own, below), so a client that sent the token
    instead of the service account or API secret would be refused."""
    unknown = "not-this-projects-token"
    foreign = [import_event(token=unknown) for _ in range(2)]
    refused = IngestionClient(settings_for(mixpanel_emulator, token=unknown), FAST)
    with pytest.raises(AuthenticationError, match="project token"):
        refused.send_batch("import", [foreign[0]])
    kinds = {
        "service account": {
            "token": unknown,
            "service_account_username": "sa-user",
            "service_account_secret": Secret("sa-secret"),
            "project_id": "12345",
        },
        "api secret": {"token": unknown, "api_secret": Secret("emulator-secret")},
    }
    for (kind, changes), message in zip(kinds.items(), foreign, strict=True):
        client = IngestionClient(settings_for(mixpanel_emulator, **changes), FAST)
        assert client.send_batch("import", [message]).ok, kind
    # The project token: configured, or (none configured) the one inside the record.
    configured = IngestionClient(settings_for(mixpanel_emulator, token=TOKEN), FAST)
    from_record = IngestionClient(settings_for(mixpanel_emulator, token=None), FAST)
    own = [import_event(), import_event()]
    assert configured.send_batch("import", [own[0]]).ok
    assert from_record.send_batch("import", [own[1]]).ok
    assert mixpanel_emulator.client.stats()["requests"]["import"] == {"401": 1, "200": 4}
    assert sorted(mixpanel_emulator.client.insert_ids("import")) == sorted(
        m.insert_id for m in [*foreign, *own]
    )


def test_read_timeout_is_retried(mixpanel_emulator: Emulator) -> None:
    """A stalled server times the first attempt out; the retry (after release) succeeds."""
    options = attrs.evolve(FAST, read_timeout=0.2)
    client = IngestionClient(settings_for(mixpanel_emulator), options)
    mixpanel_emulator.client.stall()
    wait = RecordingWait(then=mixpanel_emulator.client.release)
    message = event()
    result = client.send_batch("track", [message], wait=wait)
    assert result.ok
    assert result.reports[0].attempts == 2
    # The timed-out request may still land once released: Mixpanel deduplicates it.
    assert set(mixpanel_emulator.client.insert_ids("track")) == {message.insert_id}


def test_dropped_connections_are_retried(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    mixpanel_emulator.client.drop_next(2)
    result = client.send_batch("engage", [profile(n=1)], wait=RecordingWait())
    assert result.ok
    assert result.reports[0].attempts == 3


def test_the_retry_budget_ends_in_failed_reports(mixpanel_emulator: Emulator) -> None:
    options = attrs.evolve(FAST, retry_budget=1.0, backoff_base=0.3, backoff_cap=10.0)
    client = IngestionClient(settings_for(mixpanel_emulator), options)
    mixpanel_emulator.client.fail_next(100, 503)
    result = client.send_batch("track", [event(), event()], wait=RecordingWait())
    assert [r.status for r in result.reports] == [DeliveryStatus.FAILED] * 2
    assert 3 <= result.reports[0].attempts <= 4
    assert "503" in (result.reports[0].reason or "")


def test_failed_reports_carry_the_retry_after_of_the_last_answer(
    mixpanel_emulator: Emulator,
) -> None:
    """For whoever sends the records again later (the forwarder's next round): the server's
    Retry-After holds for that send too. Only the last answer's counts; none, no value."""
    client = IngestionClient(settings_for(mixpanel_emulator), HttpOptions(retry_budget=5.0))
    mixpanel_emulator.client.fail_next(1, 503, retry_after=1)
    mixpanel_emulator.client.fail_next(1, 429, retry_after=30)
    result = client.send_batch("track", [event(), event()], wait=RecordingWait())
    assert [(r.status, r.http_status, r.attempts) for r in result.reports] == [
        (DeliveryStatus.FAILED, 429, 2)
    ] * 2
    assert [r.retry_after for r in result.reports] == [30.0, 30.0]
    assert [o.retry_after for o in result.outcomes] == [30.0]

    mixpanel_emulator.client.fail_next(1, 429, retry_after=30)
    mixpanel_emulator.client.fail_next(1, 503)
    options = attrs.evolve(FAST, max_retries=1)
    result = IngestionClient(settings_for(mixpanel_emulator), options).send_batch(
        "track", [event()], wait=RecordingWait()
    )
    assert [(r.status, r.http_status, r.retry_after) for r in result.reports] == [
        (DeliveryStatus.FAILED, 503, None)
    ]
    accepted = client.send_batch("track", [event()], wait=RecordingWait())
    assert [(r.status, r.retry_after) for r in accepted.reports] == [
        (DeliveryStatus.ACCEPTED, None)
    ]


def test_a_passed_deadline_sends_nothing(mixpanel_emulator: Emulator) -> None:
    client = IngestionClient(settings_for(mixpanel_emulator), FAST)
    result = client.send_batch("track", [event()], deadline=0.0)
    assert result.failed
    assert mixpanel_emulator.client.stats()["requests"] == {}


def test_groups_are_sent_200_a_request(
    mixpanel_emulator: Emulator, client: IngestionClient
) -> None:
    result = client.send_batch("groups", [profile(GroupUpdate, n) for n in range(450)])
    assert result.ok
    assert mixpanel_emulator.client.stats()["requests"]["groups"] == {"200": 3}


def test_gzip_and_ndjson_are_understood(mixpanel_emulator: Emulator) -> None:
    options = attrs.evolve(FAST, gzip=True, import_format="ndjson")
    client = IngestionClient(settings_for(mixpanel_emulator), options)
    assert client.send_batch("import", [import_event() for _ in range(50)]).ok
    assert client.send_batch("track", [event() for _ in range(50)]).ok
    assert mixpanel_emulator.client.stats()["accepted"]["import"] == 50
