"""What the tests of an inner transport that raises share: the ``acme-inner`` transport
types installed for the test (``raising_types``, used by each test module), the configuration,
and reading what was delivered and reported.

A module of its own, not a test module: the tests run with ``--import-mode=importlib``, so a
test module is not importable by name.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inner_transports import install
from mp_workers import TOKEN, ReportCounter, observed_client

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config, config_from_mapping

NO_LINGER_CUTS = 60.0
"""The producers' ``linger``: the default 50 ms cut batches early on a loaded machine (a
``track`` taking longer), so that runs of records were no longer the batches of ``batch_size``
the tests count on. Every test ends with a flush or a close, which sends what is left."""


@pytest.fixture
def raising_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The transport types of ``inner_transports``, installed for this process and the spawned
    sender (which gets this process's ``sys.path``)."""
    monkeypatch.syspath_prepend(str(install(tmp_path / "site")))
    yield
    sys.modules.pop("acme_inner", None)  # each test installs its own copy


def config(
    out: Path, archive_type: str = "raising", mixpanel: dict[str, Any] | None = None, **archive: Any
) -> Config:
    """``default``: a multiprocessing_queue whose sender delivers through ``archive``."""
    return config_from_mapping(
        {
            "mixpanel": {"token": TOKEN, **(mixpanel or {})},
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "archive",
                    "batch_size": 5,
                    "linger": NO_LINGER_CUTS,
                    "shutdown_timeout": 30.0,
                },
                "archive": {"type": archive_type, "path": str(out), **archive},
            },
        }
    )


def track(client: Mixpanel, names: list[str], first: int = 0) -> None:
    for i, name in enumerate(names, first):
        client.track("u", name, {"$insert_id": f"id-{i}"})


def written(out: Path) -> list[str]:
    """The insert ids the inner transport delivered, in order."""
    if not out.exists():
        return []
    return [json.loads(line)["properties"]["$insert_id"] for line in out.read_text().splitlines()]


Outcome = tuple[str, str, str | None]
"""A report's status, transport and reason."""


def outcomes(counter: ReportCounter) -> dict[str | None, Outcome]:
    """Each report's outcome by its message's insert id (one report each: see ``reported``)."""
    return {
        report.message.insert_id if report.message is not None else None: (
            report.status.value,
            report.transport,
            report.reason,
        )
        for report in counter.reports
    }


def reported(counter: ReportCounter) -> list[str | None]:
    """The insert ids of the reports, sorted, once per report (twice if reported twice)."""
    return sorted(
        (r.message.insert_id if r.message is not None else None for r in counter.reports),
        key=str,
    )


def client_for(conf: Config, forward: bool) -> tuple[Mixpanel, ReportCounter, Any]:
    """A client on ``conf``, its report counter (which sees the reports only when
    ``forward``: the sender forwards them) and its ``default`` transport."""
    counter = ReportCounter()
    if forward:
        client, counter = observed_client(conf)
    else:
        client = Mixpanel(TOKEN, config=conf)
    return client, counter, client.pipeline.transport("default")
