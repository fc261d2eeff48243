"""Shared helpers for the emulator tests: event factories and an /import poster."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import requests

from mixpanel_core.emulator import Emulator

TOKEN = "emulator-token"
SERVICE_ACCOUNT = ("sa-user", "sa-secret")
PROJECT = {"project_id": "12345"}

MakeEvent = Callable[..., dict[str, Any]]
PostImport = Callable[..., requests.Response]


@pytest.fixture
def make_event() -> MakeEvent:
    """Build a valid event for /track and /import; keyword arguments override properties."""
    counter = itertools.count()

    def make(name: str = "Signed Up", **properties: Any) -> dict[str, Any]:
        number = next(counter)
        props = {
            "token": TOKEN,
            "distinct_id": f"user-{number}",
            "time": time.time(),
            "$insert_id": f"insert-{number}",
            **properties,
        }
        return {"event": name, "properties": props}

    return make


@pytest.fixture
def post_import(mixpanel_emulator: Emulator) -> PostImport:
    """POST records to the emulator's /import with the service account, strict by default."""
    session = requests.Session()

    def post(records: Iterable[dict[str, Any]] | dict[str, Any], strict: bool = True) -> Any:
        params = {**PROJECT, "strict": "1" if strict else "0"}
        return session.post(
            mixpanel_emulator.base_url + "/import",
            json=records if isinstance(records, dict) else list(records),
            params=params,
            auth=SERVICE_ACCOUNT,
        )

    return post
