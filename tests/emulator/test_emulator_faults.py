"""Injected faults over real sockets: failures, random failures, latency, drops and stalls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator, EmulatorControls, EmulatorError

pytestmark = pytest.mark.integration

MakeEvent = Callable[..., dict[str, Any]]


@pytest.fixture(params=["in-process", "over-http"])
def controls(request: pytest.FixtureRequest, mixpanel_emulator: Emulator) -> EmulatorControls:
    """The same control methods, called on the Emulator itself and through its HTTP client."""
    return mixpanel_emulator if request.param == "in-process" else mixpanel_emulator.client


def _track(emulator: Emulator, event: dict[str, Any]) -> requests.Response:
    return requests.post(emulator.base_url + "/track", json=event)


def _wait_for_stalled_request(controls: EmulatorControls, timeout: float = 10.0) -> None:
    """Until a request is held by the stall; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while controls.faults()["stalled_requests"] < 1:
        assert time.monotonic() < deadline, f"no request reached the stall within {timeout}s"
        time.sleep(0.01)


def test_fail_next_answers_with_the_status_and_a_mixpanel_body_and_stores_nothing(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    controls.fail_next(2, 429)
    for _ in range(2):
        answer = _track(mixpanel_emulator, make_event())
        assert answer.status_code == 429
        assert answer.json() == {
            "code": 429,
            "error": "Project exceeded rate limits. Please retry the request with exponential"
            " backoff.",
            "status": "Too Many Requests",
        }
        assert "Retry-After" not in answer.headers
    assert mixpanel_emulator.records() == []
    assert _track(mixpanel_emulator, make_event()).status_code == 200
    assert mixpanel_emulator.stats()["requests"]["track"] == {"429": 2, "200": 1}


@pytest.mark.parametrize("endpoint", ["track", "import", "engage", "groups"])
def test_an_injected_2xx_answers_status_0_and_stores_nothing(
    mixpanel_emulator: Emulator, controls: EmulatorControls, endpoint: str
) -> None:
    """The one failure Mixpanel answers with a 2xx (review R40 F4): the body was
    ``{"code": 200, "error": "OK", "status": "OK"}``, /import's success, so a client took
    records nobody stored for imported."""
    controls.fail_next(1, 200)

    answer = requests.post(f"{mixpanel_emulator.base_url}/{endpoint}", data=b"[]")

    assert answer.status_code == 200
    assert answer.json() == {
        "status": 0,
        "error": "injected failure: no record of the request was applied",
    }
    assert mixpanel_emulator.records() == []


def test_an_injected_413_answers_the_body_of_the_emulators_own_413(make_event: MakeEvent) -> None:
    # MIXPANEL_API.md's 413: "request exceeds max limit of N bytes"; it fell back to the HTTP
    # reason phrase, a body Mixpanel does not send.
    with Emulator(max_body_bytes=50_000) as emulator:
        emulator.fail_next(1, 413)
        injected = _track(emulator, make_event())
        own = _track(emulator, make_event(pad="p" * 60_000))
    assert injected.status_code == own.status_code == 413
    expected = {
        "code": 413,
        "error": "request exceeds max limit of 50000 bytes",
        "status": "Payload Too Large",
    }
    assert injected.json() == own.json() == expected
    assert emulator.records() == []


def test_fail_next_can_send_retry_after(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    controls.fail_next(1, 503, retry_after=2)
    answer = _track(mixpanel_emulator, make_event())
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert answer.json()["code"] == 503


def test_fail_next_only_hits_the_listed_endpoints(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    controls.fail_next(1, 500, endpoints=["import"])
    assert _track(mixpanel_emulator, make_event()).status_code == 200
    answer = requests.post(
        mixpanel_emulator.base_url + "/import", json=make_event(), auth=("emulator-token", "")
    )
    assert answer.status_code == 500
    assert _track(mixpanel_emulator, make_event()).status_code == 200


def test_fail_next_calls_queue_up_in_order(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    controls.fail_next(1, 500)
    controls.fail_next(1, 429)
    statuses = [_track(mixpanel_emulator, make_event()).status_code for _ in range(3)]
    assert statuses == [500, 429, 200]


def test_fail_fraction_with_a_seed_fails_the_same_requests_every_time(
    make_event: MakeEvent,
) -> None:
    runs = []
    for _ in range(2):
        with Emulator() as emulator:
            emulator.fail_fraction(0.5, statuses=(429, 500, 503), seed=7)
            runs.append([_track(emulator, make_event()).status_code for _ in range(40)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 429, 500, 503}


def test_fail_fraction_of_zero_turns_random_failures_off(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    controls.fail_fraction(1.0, statuses=[500])
    assert _track(mixpanel_emulator, make_event()).status_code == 500
    controls.fail_fraction(0)
    assert _track(mixpanel_emulator, make_event()).status_code == 200


def test_latency_delays_every_ingestion_answer(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    controls.set_latency(0.3)
    started = time.monotonic()
    assert _track(mixpanel_emulator, make_event()).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_drop_next_closes_the_connection_without_an_answer_and_stores_nothing(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    controls.drop_next(1)
    with pytest.raises(requests.ConnectionError):
        _track(mixpanel_emulator, make_event())
    assert mixpanel_emulator.records() == []
    assert mixpanel_emulator.stats()["requests"]["track"] == {"dropped": 1}
    assert _track(mixpanel_emulator, make_event()).status_code == 200


def test_drop_next_after_applying_keeps_the_records_and_never_answers(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    controls.drop_next(1, endpoints=["track"], after_applying=True)
    assert controls.faults()["drop_next"] == [
        {"remaining": 1, "endpoints": ["track"], "after_applying": True}
    ]
    event = make_event()
    with pytest.raises(requests.ConnectionError):
        _track(mixpanel_emulator, event)
    assert mixpanel_emulator.records("track") == [event]
    assert mixpanel_emulator.stats()["requests"]["track"] == {"dropped": 1}
    assert mixpanel_emulator.stats()["accepted"]["track"] == 1
    assert _track(mixpanel_emulator, event).status_code == 200  # the retry: a duplicate
    assert mixpanel_emulator.stats()["duplicate_events"] == 1


def test_stall_holds_requests_until_release(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    controls.stall()
    answers: list[int] = []
    sender = threading.Thread(
        target=lambda: answers.append(_track(mixpanel_emulator, make_event()).status_code)
    )
    sender.start()
    _wait_for_stalled_request(controls)
    assert answers == []
    assert mixpanel_emulator.records() == []
    controls.release()
    sender.join(5)
    assert answers == [200]
    assert len(mixpanel_emulator.records("track")) == 1


def test_stop_releases_stalled_requests(make_event: MakeEvent) -> None:
    emulator = Emulator().start()
    emulator.stall()
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(_track(emulator, make_event()).status_code)
        except requests.ConnectionError as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        _wait_for_stalled_request(emulator)
    finally:
        emulator.stop()  # also when the wait fails: the sender must not hang the run
    sender.join(5)
    assert not sender.is_alive()
    assert len(outcome) == 1


def test_clear_faults_removes_every_fault_but_keeps_records(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    _track(mixpanel_emulator, make_event())
    controls.fail_next(5, 500)
    controls.drop_next(5)
    controls.fail_fraction(1.0)
    controls.set_latency(5)
    controls.stall()
    controls.clear_faults()
    assert controls.faults() == {
        "fail_next": [],
        "drop_next": [],
        "fail_fraction": None,
        "latency": 0.0,
        "stalled": False,
        "stalled_requests": 0,
    }
    assert _track(mixpanel_emulator, make_event()).status_code == 200
    assert len(mixpanel_emulator.records()) == 2


def test_reset_forgets_records_stats_and_faults(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    _track(mixpanel_emulator, make_event())
    controls.fail_next(1, 500)
    controls.reset()
    assert controls.records() == []
    assert controls.stats()["accepted"]["track"] == 0
    assert controls.stats()["requests"] == {}
    assert _track(mixpanel_emulator, make_event()).status_code == 200


def test_faults_are_set_by_posting_json_to_the_http_api(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    answer = requests.post(
        mixpanel_emulator.base_url + "/_emulator/faults",
        json={"action": "fail_next", "n": 1, "status": 502, "endpoints": ["track"]},
    )
    assert answer.status_code == 200
    assert answer.json()["fail_next"] == [
        {"remaining": 1, "endpoints": ["track"], "status": 502, "retry_after": None}
    ]
    assert _track(mixpanel_emulator, make_event()).status_code == 502


@pytest.mark.parametrize(
    "body",
    [
        {"action": "explode"},
        {"action": "fail_next", "n": -1},
        {"action": "fail_next", "n": 1, "status": 42},
        {"action": "fail_next", "n": 1, "endpoints": ["nowhere"]},
        {"action": "fail_fraction", "p": 1.5},
        {"action": "latency", "seconds": "slow"},
    ],
)
def test_malformed_fault_requests_are_400_and_change_nothing(
    mixpanel_emulator: Emulator, body: dict[str, Any]
) -> None:
    answer = requests.post(mixpanel_emulator.base_url + "/_emulator/faults", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]
    assert mixpanel_emulator.faults()["fail_next"] == []


def test_malformed_fault_calls_raise_emulator_error(controls: EmulatorControls) -> None:
    with pytest.raises(EmulatorError, match="not an HTTP status"):
        controls.fail_next(1, status=1000)


def test_stalled_requests_counts_the_requests_held_now_after_clear_faults_and_reset(
    mixpanel_emulator: Emulator, controls: EmulatorControls, make_event: MakeEvent
) -> None:
    """Releasing held requests does not reset the count under them: it never goes negative."""

    def held(count: int) -> list[threading.Thread]:
        senders = [
            threading.Thread(target=_track, args=(mixpanel_emulator, make_event()))
            for _ in range(count)
        ]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 10
        while controls.faults()["stalled_requests"] != count:
            assert time.monotonic() < deadline, f"{count} requests never held at once"
            time.sleep(0.01)
        return senders

    controls.stall()
    senders = held(2)
    controls.clear_faults()
    for sender in senders:
        sender.join(5)  # answered, so no longer held
    assert controls.faults()["stalled_requests"] == 0
    controls.stall()
    senders = held(1)
    controls.reset()
    senders[0].join(5)
    assert controls.faults()["stalled_requests"] == 0


@pytest.mark.parametrize("over", [1, 2_000, 200_000])
def test_a_too_large_request_takes_the_pending_fault_however_far_over_the_limit(
    make_event: MakeEvent, over: int
) -> None:
    """fail_next applies to the next n requests: a body over the limit (by less, or more, than
    a gzip body's slack) is one of them; the fault spent, the same body gets its 413."""
    with Emulator(max_body_bytes=100_000) as emulator:
        body = b"[" + b" " * (100_000 + over - 2) + b"]"
        url = emulator.base_url + "/track"
        headers = {"Content-Type": "application/json"}
        emulator.fail_next(1, 503)
        with requests.Session() as session:
            assert session.post(url, data=body, headers=headers).status_code == 503
            assert emulator.faults()["fail_next"] == []
            assert session.post(url, data=body, headers=headers).status_code == 413
        assert emulator.stats()["requests"]["track"] == {"503": 1, "413": 1}


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"action": ["fail_next"]}, "'action' must be one of"),
        ({"action": {"name": "stall"}}, "'action' must be one of"),
        ({"action": "latency", "seconds": 1e300}, "'seconds' must be at most 3600"),
        ({"action": "fail_next", "n": 1, "status": 101}, "'status': 101 is not an HTTP status"),
        ({"action": "fail_next", "n": 1, "status": 204}, "'status': 204 is not an HTTP status"),
        ({"action": "fail_next", "n": 1, "status": 205}, "'status': 205 is not an HTTP status"),
        ({"action": "fail_next", "n": 1, "status": 304}, "'status': 304 is not an HTTP status"),
        (
            {"action": "fail_fraction", "p": 0.5, "statuses": [429, 204]},
            "'statuses': 204 is not an HTTP status",
        ),
        # JSON's true is a bool, not the integer seed (review R66 F4).
        ({"action": "fail_fraction", "p": 0.5, "seed": True}, "'seed' must be an integer"),
    ],
)
def test_a_fault_request_out_of_bounds_raises_emulator_error_naming_the_field(
    controls: EmulatorControls, arguments: dict[str, Any], says: str
) -> None:
    """Over HTTP a 400 (never a closed connection), in process an EmulatorError (never a
    TypeError). The body is posted as written: no public method sends a non-string action."""
    before = controls.faults()
    with pytest.raises(EmulatorError, match=says):
        controls._admin("POST", "/_emulator/faults", body=arguments)
    assert controls.faults() == before
