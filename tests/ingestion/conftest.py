"""Builders shared by the ingestion tests: messages with stable insert ids, fast options."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import pytest

from mixpanel_core.emulator import Emulator
from mixpanel_core.frozen import freeze
from mixpanel_core.ingestion import HttpOptions, IngestionClient
from mixpanel_core.messages import Event, GroupUpdate, ImportEvent, Message, PeopleUpdate
from mixpanel_core.settings import MixpanelSettings

from .scripted import Answer, ScriptedServer

TOKEN = "emulator-token"
_ids = itertools.count()


def event(cls: type[Event] = Event, distinct_id: str = "user-1", **props: object) -> Event:
    n = next(_ids)
    record = {
        "event": "signup",
        "properties": {
            "token": TOKEN,
            "distinct_id": distinct_id,
            "time": time.time() - 60,
            "$insert_id": f"id-{n:030d}",
            **props,
        },
    }
    return cls(freeze(record, cls.kind))


def import_event(distinct_id: str = "user-1", **props: object) -> Message:
    return event(ImportEvent, distinct_id, **props)


def profile(cls: type[PeopleUpdate] = PeopleUpdate, n: int = 0) -> Message:
    record: dict[str, object] = {"$token": TOKEN, "$time": time.time(), "$set": {"n": n}}
    if cls is GroupUpdate:
        record.update({"$group_key": "company", "$group_id": f"c{n}"})
    else:
        record["$distinct_id"] = f"user-{n}"
    return cls(freeze(record, cls.kind))


FAST = HttpOptions(
    backoff_base=0.001, backoff_cap=0.002, rate_limit_base=0.001, rate_limit_cap=0.002
)


class RecordingWait:
    """A ``wait`` that records the delays asked for and does not sleep (tests stay fast)."""

    def __init__(self, then: Callable[[], None] | None = None) -> None:
        self.delays: list[float] = []
        self._then = then

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._then is not None:
            self._then()


def settings_for(emulator: Emulator, **changes: object) -> MixpanelSettings:
    values: dict[str, object] = {"api_host": emulator.base_url, "token": TOKEN}
    values.update(changes)
    return MixpanelSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(mixpanel_emulator: Emulator) -> IngestionClient:
    return IngestionClient(settings_for(mixpanel_emulator), FAST)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    """``scripted(*answers)`` starts a ``ScriptedServer``; each is stopped after the test."""
    servers: list[ScriptedServer] = []

    def start(*answers: Answer) -> ScriptedServer:
        server = ScriptedServer(list(answers)).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()
