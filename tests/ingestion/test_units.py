"""Classification, retry policy, batching and endpoint resolution, each on its own."""

from __future__ import annotations

import random

import pytest

from mixpanel_core.errors import ConfigError
from mixpanel_core.ingestion import (
    EncodedPair,
    RetryPolicy,
    Verdict,
    WireFormat,
    batches,
    endpoint_urls,
    split_encoded,
    wire_format,
)
from mixpanel_core.ingestion.classify import classify_response, parse_retry_after
from mixpanel_core.messages import GroupUpdate
from mixpanel_core.settings import MixpanelSettings

from .conftest import event, import_event, profile


@pytest.mark.parametrize(
    ("endpoint", "status", "body", "verdict"),
    [
        ("track", 200, b'{"status": 1, "error": null}', Verdict.ACCEPTED),
        ("track", 200, b"1", Verdict.ACCEPTED),
        ("track", 200, b'{"status": 0, "error": "bad token"}', Verdict.REJECTED),
        ("track", 200, b"0", Verdict.REJECTED),
        (
            "import",
            200,
            b'{"code": 200, "status": "OK", "num_records_imported": 2}',
            Verdict.ACCEPTED,
        ),
        ("import", 400, b'{"code": 400, "error": "bad json"}', Verdict.REJECTED),
        ("import", 401, b'{"error": "Invalid credentials"}', Verdict.AUTH),
        ("import", 403, b"", Verdict.AUTH),
        ("import", 413, b'{"code": 413, "error": "request exceeds max limit"}', Verdict.TOO_LARGE),
        ("track", 429, b"", Verdict.RETRY),
        ("track", 500, b"", Verdict.RETRY),
        ("engage", 503, b"oops", Verdict.RETRY),
        ("groups", 404, b"", Verdict.FAILED),
        ("track", 405, b"", Verdict.FAILED),
        ("track", 410, b"", Verdict.REJECTED),
    ],
)
def test_classify_each_answer(endpoint: str, status: int, body: bytes, verdict: Verdict) -> None:
    assert classify_response(endpoint, status, body, {}).verdict is verdict


@pytest.mark.parametrize(
    ("endpoint", "records", "verdict"),
    [
        ("track", 2, Verdict.UNNAMED),
        ("engage", 50, Verdict.UNNAMED),
        ("groups", 2, Verdict.UNNAMED),
        ("track", 1, Verdict.REJECTED),
        ("track", None, Verdict.REJECTED),
        ("import", 2, Verdict.REJECTED),
    ],
)
def test_status_0_for_several_records_does_not_name_the_refused_ones(
    endpoint: str, records: int | None, verdict: Verdict
) -> None:
    """Mixpanel keeps the valid records of a request it answers status 0: only for a single
    record is that answer the record's rejection."""
    body = b'{"status": 0, "error": "1 of 2 records failed validation"}'
    answer = classify_response(endpoint, 200, body, {}, records)
    assert answer.verdict is verdict
    assert answer.reason == "1 of 2 records failed validation"


def test_strict_400_names_failed_records_by_index_with_either_insert_id_key() -> None:
    body = (
        b'{"code": 400, "error": "some failed", "num_records_imported": 1, "failed_records": ['
        b'{"index": 0, "insert_id": "a", "field": "properties.time", "message": "too old"},'
        b'{"index": 2, "$insert_id": "c", "field": "properties.distinct_id", "message": "x"}]}'
    )
    outcome = classify_response("import", 400, body, {})
    assert outcome.verdict is Verdict.PARTIAL
    assert [(f.index, f.insert_id, f.field) for f in outcome.failures] == [
        (0, "a", "properties.time"),
        (2, "c", "properties.distinct_id"),
    ]


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    # A proxy's absurd answer would park the forwarder's next round until a restart.
    assert parse_retry_after("99999999999999999999") == 3600.0
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT") == 3600.0
    assert parse_retry_after("3600.5") == 3600.0
    assert parse_retry_after("9" * 400) == 3600.0  # infinite as a float
    assert classify_response("track", 429, b"", {"Retry-After": "3"}).retry_after == 3.0


def test_rate_limit_schedule_starts_near_2s_and_doubles_to_60s() -> None:
    policy = RetryPolicy()
    lows = [policy.delay(n, rate_limited=True, rand=lambda: 0.0) for n in range(1, 9)]
    highs = [policy.delay(n, rate_limited=True, rand=lambda: 1.0) for n in range(1, 9)]
    assert highs == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert lows == [h / 2 for h in highs]


def test_server_errors_back_off_from_base_to_cap_and_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(base=0.5, cap=4.0)
    assert [policy.delay(n, rand=lambda: 1.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(1, retry_after=10.0, rand=lambda: 1.0) == 10.0


@pytest.mark.parametrize("rate_limited", [False, True])
def test_a_retry_past_the_thousandth_waits_its_cap_rather_than_overflowing(
    rate_limited: bool,
) -> None:
    """A short backoff retried through a long outage (or a forwarder's rounds through hours
    of one) reaches the 1,025th retry, where 2.0 ** 1024 raised OverflowError."""
    policy = RetryPolicy(base=0.002, cap=0.004, rate_limit_base=0.002, rate_limit_cap=0.004)
    waits = [policy.delay(n, rate_limited=rate_limited, rand=lambda: 1.0) for n in (1025, 10**6)]
    assert waits == [0.004, 0.004]


def test_budget_and_deadline_bound_the_remaining_time() -> None:
    policy = RetryPolicy(budget=10.0)
    assert policy.remaining(started=100.0, now=104.0) == 6.0
    assert policy.remaining(started=100.0, now=104.0, deadline=105.0) == 1.0


def test_batches_stay_within_record_limits() -> None:
    sizes = [len(b) for b in batches("track", [event() for _ in range(4500)])]
    assert sizes == [2000, 2000, 500]
    groups = [profile(GroupUpdate, n) for n in range(450)]
    assert [len(b) for b in batches("groups", groups)] == [200, 200, 50]


def test_batches_stay_within_the_byte_budget_exactly() -> None:
    """The size the batcher computes is the size of the body actually sent."""
    fmt = wire_format("import")
    items = fmt.encode_messages([import_event(padding="x" * 300) for _ in range(100)])
    for batch in split_encoded(items, fmt, max_bytes=5000, max_records=2000):
        body = fmt.body(batch)
        assert len(body) <= 5000 or len(batch) == 1
        assert len(body) == fmt.body_size(sum(len(i.data) for i in batch), len(batch))
    assert sum(len(b) for b in split_encoded(items, fmt, 5000, 2000)) == 100


def test_a_record_bigger_than_the_budget_gets_a_request_of_its_own() -> None:
    messages = [import_event(), import_event(blob="y" * 10_000), import_event()]
    assert [len(b) for b in batches("import", messages, max_bytes=2000)] == [1, 1, 1]


def _one_record_at_a_time(
    items: list[EncodedPair], fmt: WireFormat, max_bytes: int, max_records: int
) -> list[list[EncodedPair]]:
    """The batching rule spelled out: add records while the body stays within both limits."""
    done: list[list[EncodedPair]] = []
    batch: list[EncodedPair] = []
    for item in items:
        grown = [*batch, item]
        size = fmt.body_size(sum(len(data) for _, data in grown), len(grown))
        if batch and (len(grown) > max_records or size > max_bytes):
            done.append(batch)
            grown = [item]
        batch = grown
    return [*done, batch] if batch else done


@pytest.mark.parametrize("endpoint", ["track", "import", "groups"])
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("count", [1, 6, 600])
def test_split_encoded_cuts_where_filling_one_record_at_a_time_would(
    endpoint: str, seed: int, count: int
) -> None:
    """Same batches as the rule spelled out, whichever limit binds (or none), oversized
    records too."""
    rng = random.Random(seed)
    fmt = wire_format(endpoint, "ndjson" if seed % 2 else "json")
    message = import_event()
    items = [(message, b"x" * rng.choice([1, 10, 90, 400, 1500])) for _ in range(count)]
    max_bytes, max_records = rng.choice([1000, 5000, 100_000]), rng.choice([1, 7, 200, 2000])
    expected = _one_record_at_a_time(items, fmt, max_bytes, max_records)
    assert list(split_encoded(items, fmt, max_bytes, max_records)) == expected
    assert list(split_encoded(iter(items), fmt, max_bytes, max_records)) == expected


@pytest.mark.parametrize("endpoint", ["track", "import"])
def test_split_encoded_fills_a_body_to_the_last_byte_and_no_further(endpoint: str) -> None:
    fmt = wire_format(endpoint)
    message = import_event()
    items: list[EncodedPair] = [(message, b"x" * 100) for _ in range(10)]
    exact = fmt.body_size(1000, 10)
    assert [len(b) for b in split_encoded(items, fmt, exact, 2000)] == [10]
    assert [len(b) for b in split_encoded(items, fmt, exact - 1, 2000)] == [9, 1]
    assert [len(b) for b in split_encoded(items, fmt, exact, 10)] == [10]
    assert [len(b) for b in split_encoded(items, fmt, exact, 9)] == [9, 1]


def test_split_encoded_hands_back_nothing_for_no_records() -> None:
    assert list(split_encoded([], wire_format("track"), 1000, 10)) == []


def test_endpoint_urls_from_host_base_url_and_overrides() -> None:
    urls = endpoint_urls(MixpanelSettings(api_host="api-in.mixpanel.com"))
    assert urls["import"] == "https://api-in.mixpanel.com/import"
    urls = endpoint_urls(
        MixpanelSettings(api_host="http://127.0.0.1:8080/", urls={"track": "https://proxy/t"})
    )
    assert urls["engage"] == "http://127.0.0.1:8080/engage"
    assert urls["track"] == "https://proxy/t"


def test_plain_http_off_loopback_needs_explicit_permission() -> None:
    with pytest.raises(ConfigError, match=r"mixpanel\.api_host.*allow_insecure_http"):
        endpoint_urls(MixpanelSettings(api_host="http://10.0.0.5:8080"))
    with pytest.raises(ConfigError, match=r"mixpanel\.urls\.groups"):
        endpoint_urls(MixpanelSettings(urls={"groups": "http://proxy.internal/groups"}))
    allowed = MixpanelSettings(api_host="http://10.0.0.5:8080", allow_insecure_http=True)
    assert endpoint_urls(allowed)["track"] == "http://10.0.0.5:8080/track"
    assert endpoint_urls(MixpanelSettings(api_host="http://[::1]:9"))["track"]
