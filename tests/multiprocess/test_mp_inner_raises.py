"""An inner transport that raises what a production bug raises (``OSError``: a full disk) loses
nothing silently.

The sender caught only mixpanel-core's errors: a third-party inner transport whose ``send``
raised ``OSError`` killed it, the owner's ``mixpanel_delivered`` hook got no report, ``close()``
returned nothing and the sender's counts called every record it took accepted. Now a raising
``send`` fails that message (reported FAILED, counted failed) and the sender goes on; a raising
``flush`` makes the owner's flush raise; a raising ``close``, or a drain that dies, leaves
counts that claim no acceptance without a report, and says why.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inner_transports import DOOMED, UNLUCKY, install
from mp_workers import TOKEN, ReportCounter, observed_client

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config, config_from_mapping
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.errors import TransportError

DISK_FULL = (
    "the inner transport 'archive' raised OSError in send: [Errno 28] No space left on device"
)


@pytest.fixture(autouse=True)
def raising_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The transport types ``raising`` and ``raising_sink``, installed for this process and the
    spawned sender (which gets this process's ``sys.path``)."""
    monkeypatch.syspath_prepend(str(install(tmp_path / "site")))
    yield
    sys.modules.pop("acme_inner", None)  # each test installs its own copy


def config(out: Path, archive_type: str = "raising", **archive: Any) -> Config:
    """``default``: a multiprocessing_queue whose sender delivers through ``archive``."""
    return config_from_mapping(
        {
            "mixpanel": {"token": TOKEN},
            "transports": {
                "default": {
                    "type": "multiprocessing_queue",
                    "inner": "archive",
                    "batch_size": 5,
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
    """Each report's outcome by its message's insert id."""
    return {
        report.message.insert_id if report.message is not None else None: (
            report.status.value,
            report.transport,
            report.reason,
        )
        for report in counter.reports
    }


NAMES = ["Lucky", UNLUCKY, "Lucky", "Lucky", UNLUCKY, "Lucky", UNLUCKY, "Lucky"]
"""Eight events, three of which the inner transport's send raises OSError on."""

LUCKY = [f"id-{i}" for i, name in enumerate(NAMES) if name != UNLUCKY]
UNLUCKY_IDS = [f"id-{i}" for i, name in enumerate(NAMES) if name == UNLUCKY]


def test_a_send_that_raises_fails_that_message_and_the_sender_goes_on(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out))
    transport: Any = client.pipeline.transport("default")
    track(client, NAMES)

    assert client.flush(timeout=30) == []  # every message taken has its report
    expected: dict[str | None, Outcome] = {i: ("accepted", "archive", None) for i in LUCKY}
    expected |= {i: ("failed", "default", DISK_FULL) for i in UNLUCKY_IDS}
    assert outcomes(counter) == expected
    assert written(out) == LUCKY

    # The sender still delivers what comes after.
    track(client, ["Lucky", "Lucky"], first=len(NAMES))
    assert client.close(timeout=30) == []
    assert written(out) == [*LUCKY, "id-8", "id-9"]
    assert counter.by_status == {"accepted": len(LUCKY) + 2, "failed": len(UNLUCKY_IDS)}
    supervisor = transport.supervisor
    assert supervisor.counts == {"accepted": len(LUCKY) + 2, "failed": len(UNLUCKY_IDS)}
    assert (supervisor.unaccounted, supervisor.failure) == (0, None)
    assert supervisor.process.exitcode == 0


def test_without_forwarding_the_counts_say_which_failed(tmp_path: Path) -> None:
    """No plugin reads reports: the sender counts the failures itself."""
    out = tmp_path / "out.jsonl"
    client = Mixpanel(TOKEN, config=config(out))
    transport: Any = client.pipeline.transport("default")
    track(client, NAMES)

    assert client.close(timeout=30) == []
    assert written(out) == LUCKY
    assert transport.supervisor.counts == {"accepted": len(LUCKY), "failed": len(UNLUCKY_IDS)}
    assert transport.supervisor.failure is None
    assert transport.supervisor.process.exitcode == 0


def test_a_record_sink_that_raises_fails_the_run_it_was_given(tmp_path: Path) -> None:
    """A ``RecordSink`` that raises took none of the run (its contract): the whole run (here a
    batch of five) is reported FAILED, and the next runs are delivered."""
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out, "raising_sink"))
    names = ["Lucky"] * 5 + ["Lucky", UNLUCKY, "Lucky", "Lucky", "Lucky"] + ["Lucky"] * 5
    track(client, names)

    assert client.close(timeout=30) == []
    reason = DISK_FULL.replace("in send:", "in send_records:")
    delivered = [*range(5), *range(10, 15)]
    expected: dict[str | None, Outcome] = {
        f"id-{i}": ("accepted", "archive", None) for i in delivered
    }
    expected |= {f"id-{i}": ("failed", "default", reason) for i in range(5, 10)}
    assert outcomes(counter) == expected
    assert written(out) == [f"id-{i}" for i in delivered]
    supervisor: Any = client.pipeline.transport("default").supervisor  # type: ignore[attr-defined]
    assert supervisor.counts == {"accepted": 10, "failed": 5}
    assert (supervisor.unaccounted, supervisor.failure) == (0, None)


def test_an_inner_flush_that_raises_makes_the_owners_flush_raise(tmp_path: Path) -> None:
    """What the inner transport holds has no outcome yet: the owner's flush must not return
    as if it had; the sender lives on and delivers it at close."""
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out, hold=True, flush="raise"))
    transport: Any = client.pipeline.transport("default")
    track(client, ["Lucky"] * 3)

    with pytest.raises(
        TransportError,
        match=r"the inner transport 'archive' raised RuntimeError in flush: flush exploded; "
        r"3 records it took have no delivery report",
    ):
        client.flush(timeout=30)
    assert counter.reports == []

    track(client, ["Lucky", UNLUCKY], first=3)  # the sender still takes messages
    assert client.close(timeout=30) == []
    assert written(out) == ["id-0", "id-1", "id-2", "id-3"]
    assert counter.by_status == {"accepted": 4, "failed": 1}
    assert transport.supervisor.counts == {"accepted": 4, "failed": 1}
    assert transport.supervisor.failure is None
    assert transport.supervisor.process.exitcode == 0


@pytest.mark.parametrize("forward", [True, False], ids=["forwarding", "not-forwarding"])
def test_an_inner_close_that_raises_claims_nothing_accepted_without_a_report(
    tmp_path: Path, forward: bool, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out.jsonl"
    conf = config(out, hold=True, close="raise")
    counter = ReportCounter()
    if forward:
        client, counter = observed_client(conf)
    else:
        client = Mixpanel(TOKEN, config=conf)
    transport: Any = client.pipeline.transport("default")
    track(client, ["Lucky", UNLUCKY, "Lucky", "Lucky"])

    with caplog.at_level(logging.ERROR):
        assert client.close(timeout=30) == []
    supervisor = transport.supervisor
    # The three it held died with it: no report, so not counted accepted.
    assert supervisor.counts == {"failed": 1}
    assert supervisor.failure == (
        "the inner transport 'archive' raised RuntimeError in close: close exploded"
    )
    if forward:
        assert counter.by_status == {"failed": 1}
        assert supervisor.unaccounted == 3
        assert "3 records it took have no delivery report" in caplog.text
    else:
        assert supervisor.unaccounted is None  # accepted records are not reported back
        assert "the outcome of 4 records it took is unknown" in caplog.text
    assert written(out) == []


def test_a_drain_that_dies_claims_nothing_accepted_without_a_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A ``BaseException`` (here from the inner send, as a bug in the sender would be) ends
    the drain: the counts keep to the reports made, and the owner says why and how many
    records have none."""
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out))
    transport: Any = client.pipeline.transport("default")
    track(client, ["Lucky", "Lucky", DOOMED, "Lucky"])

    with caplog.at_level(logging.ERROR), pytest.raises(TransportError, match="is not running"):
        client.flush(timeout=30)
    client.close(timeout=30)
    supervisor = transport.supervisor
    assert counter.by_status == {"accepted": 2}
    assert supervisor.counts == {"accepted": 2}
    assert supervisor.failure == "the sender stopped delivering: Doom: " + (
        "the sender's drain must not survive this"
    )
    assert supervisor.unaccounted == 2
    assert "2 records it took have no delivery report" in caplog.text
    assert written(out) == ["id-0", "id-1"]


def test_a_raising_send_is_reported_for_each_message_it_failed(tmp_path: Path) -> None:
    """Every message's own report, rebuilt from its record: the hook can resend it."""
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out))
    track(client, [UNLUCKY] * 3)
    client.close(timeout=30)
    failed = [r for r in counter.reports if r.status is DeliveryStatus.FAILED]
    assert [r.message.insert_id for r in failed] == ["id-0", "id-1", "id-2"]  # type: ignore[union-attr]
    assert all(r.message.name == UNLUCKY for r in failed)  # type: ignore[union-attr]
