"""Inspecting what the emulator accepted: records, stats, the record file, the HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from mixpanel_core.emulator import Emulator, EmulatorClient, EmulatorError

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
MakeEvent = Callable[..., dict[str, Any]]
PostImport = Callable[..., requests.Response]


def test_records_are_kept_in_arrival_order_overall_and_per_endpoint(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    first, second, third = make_event(), make_event(), make_event()
    update = {"$token": TOKEN, "$distinct_id": "u", "$set": {"a": 1}}
    requests.post(mixpanel_emulator.base_url + "/track", json=first)
    post_import([second])
    requests.post(mixpanel_emulator.base_url + "/engage", json=update)
    requests.post(mixpanel_emulator.base_url + "/track", json=third)
    assert mixpanel_emulator.records() == [first, second, update, third]
    assert mixpanel_emulator.records("track") == [first, third]
    assert mixpanel_emulator.client.records("import") == [second]


def test_records_are_served_over_http(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    event = make_event()
    post_import([event])
    base = mixpanel_emulator.base_url
    assert requests.get(base + "/_emulator/records", params={"endpoint": "import"}).json() == [
        event
    ]
    assert requests.get(base + "/_emulator/records?endpoint=track").json() == []
    assert requests.get(base + "/_emulator/records?endpoint=bogus").status_code == 400
    assert requests.get(base + "/_emulator/health").json() == {"status": "ok"}
    assert requests.get(base + "/_emulator/nothing").status_code == 404


def test_stats_count_requests_by_endpoint_and_status_and_records_by_outcome(
    mixpanel_emulator: Emulator, make_event: MakeEvent, post_import: PostImport
) -> None:
    post_import([make_event(), make_event(time="bad")])
    requests.post(mixpanel_emulator.base_url + "/import", json=[make_event()])  # no auth
    requests.post(mixpanel_emulator.base_url + "/track", json=make_event())
    stats = requests.get(mixpanel_emulator.base_url + "/_emulator/stats").json()
    assert stats == {
        "requests": {"import": {"400": 1, "401": 1}, "track": {"200": 1}},
        "accepted": {"track": 1, "engage": 0, "groups": 0, "import": 1},
        "rejected": {"track": 0, "engage": 0, "groups": 0, "import": 1},
        "dropped_old": {"track": 0, "engage": 0, "groups": 0, "import": 0},
        "retimed": {"track": 0, "engage": 0, "groups": 0, "import": 0},
        "unique_events": 2,
        "duplicate_events": 0,
        # post_import's session, each bare requests.post, and this GET: one connection each.
        "connections": 4,
    }


def test_connections_count_each_tcp_connection_once_however_many_requests_it_carries(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    with requests.Session() as session:
        for _ in range(3):
            session.post(mixpanel_emulator.base_url + "/track", json=make_event())
    assert mixpanel_emulator.stats()["connections"] == 1  # in-process: no connection of its own
    requests.post(mixpanel_emulator.base_url + "/track", json=make_event())
    assert mixpanel_emulator.stats()["connections"] == 2
    # Over HTTP the control client's own keep-alive connection counts, once.
    assert mixpanel_emulator.client.stats()["connections"] == 3
    assert mixpanel_emulator.client.stats()["connections"] == 3
    mixpanel_emulator.reset()
    assert mixpanel_emulator.stats()["connections"] == 0


def test_record_file_gets_one_json_line_per_accepted_record(
    tmp_path: Path, make_event: MakeEvent
) -> None:
    path = tmp_path / "accepted.jsonl"
    with Emulator(record_file=path) as emulator:
        events = [make_event(), make_event(token="wrong")]
        requests.post(emulator.base_url + "/track", json=events)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines == [{"endpoint": "track", "record": events[0]}]


def test_keep_records_false_keeps_counts_and_insert_ids_only(make_event: MakeEvent) -> None:
    with Emulator(keep_records=False) as emulator:
        event = make_event()
        requests.post(emulator.base_url + "/track", json=[event, event])
        assert emulator.records() == []
        assert emulator.insert_ids() == ["insert-0", "insert-0"]
        assert emulator.stats()["duplicate_events"] == 1


def test_records_and_stats_survive_stop(make_event: MakeEvent) -> None:
    with Emulator() as emulator:
        requests.post(emulator.base_url + "/track", json=make_event())
    assert len(emulator.records("track")) == 1
    with pytest.raises(EmulatorError, match="not running"):
        _ = emulator.base_url


def test_wait_for_records_returns_once_enough_arrived(
    mixpanel_emulator: Emulator, make_event: MakeEvent
) -> None:
    requests.post(mixpanel_emulator.base_url + "/track", json=[make_event(), make_event()])
    assert len(mixpanel_emulator.client.wait_for_records(2, "track", timeout=1)) == 2
    with pytest.raises(EmulatorError, match="only 2 arrived"):
        mixpanel_emulator.wait_for_records(3, timeout=0.1)


def test_client_of_an_unreachable_emulator_raises_emulator_error() -> None:
    with Emulator() as emulator:
        url = emulator.base_url
    with pytest.raises(EmulatorError, match="cannot reach the emulator"):
        EmulatorClient(url, timeout=2).stats()


def test_a_busy_port_is_reported_as_emulator_error() -> None:
    with Emulator() as first:
        port = first.port
        with pytest.raises(EmulatorError, match=f"cannot listen on 127.0.0.1:{port}"):
            Emulator(port=port).start()


def test_config_repr_hides_the_secrets() -> None:
    emulator = Emulator(api_secret="top-secret", service_account=("sa", "also-secret"))
    assert "top-secret" not in repr(emulator.config)
    assert "also-secret" not in repr(emulator.config)
