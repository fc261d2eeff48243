"""An int or float subclass is sent as the number it is, as the official client's ``json``
writes it, even when its ``__int__`` or ``__float__`` answers something else (review R55)."""

from __future__ import annotations

import json
from typing import Any

import mixpanel

import mixpanel_core


class UserId(int):
    def __int__(self) -> int:
        return 99


class Price(float):
    def __float__(self) -> float:
        return 9.5


class Recorder:
    """A consumer that keeps the records it is given."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def send(self, endpoint: str, json_message: str, api_key: object = None) -> None:
        self.records.append(json.loads(json_message))


def _sent(client: Any, recorder: Recorder) -> list[dict[str, Any]]:
    client.track(UserId(5), "ev", {"n": UserId(5), "price": Price(1.25), "list": [Price(2.5)]})
    client.people_set("u", {"n": UserId(7)})
    return recorder.records


def test_number_subclasses_are_sent_as_the_official_client_sends_them() -> None:
    ours, official = Recorder(), Recorder()
    event, profile = _sent(mixpanel_core.Mixpanel("TOKEN", ours), ours)
    expected_event, expected_profile = _sent(
        mixpanel.Mixpanel("TOKEN", consumer=official), official
    )
    props = event["properties"]
    assert (props["distinct_id"], props["n"], props["price"], props["list"]) == (5, 5, 1.25, [2.5])
    for key in ("distinct_id", "n", "price", "list"):
        assert props[key] == expected_event["properties"][key]
    assert profile["$set"] == expected_profile["$set"] == {"n": 7}
