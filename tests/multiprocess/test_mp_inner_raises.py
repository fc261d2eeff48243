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

import logging
from pathlib import Path
from typing import Any

import pytest
from inner_raises_support import (
    Outcome,
    client_for,
    config,
    outcomes,
    raising_types,
    track,
    written,
)
from inner_transports import DOOMED, UNLUCKY
from mp_workers import TOKEN, observed_client

from mixpanel_core.client import Mixpanel
from mixpanel_core.delivery import DeliveryStatus
from mixpanel_core.errors import TransportError

pytestmark = pytest.mark.usefixtures(raising_types.__name__)

DISK_FULL = (
    "the inner transport 'archive' raised OSError in send: [Errno 28] No space left on device"
)


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
    client, counter, transport = client_for(conf, forward)
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


@pytest.mark.parametrize(
    ("close", "raised"),
    [("interrupt", "KeyboardInterrupt in close"), ("exit", "SystemExit in close: 3")],
    ids=["KeyboardInterrupt", "SystemExit"],
)
@pytest.mark.parametrize("forward", [True, False], ids=["forwarding", "not-forwarding"])
def test_an_inner_close_that_raises_a_base_exception_still_sends_its_reports(
    tmp_path: Path, close: str, raised: str, forward: bool
) -> None:
    """Ctrl-C reaches the sender too (it shares the terminal's process group), in the middle
    of its inner transport's close: the reports that close made, and the sender's counts, must
    still reach the owner. They were lost, and the owner took the sender for one that died
    holding every record it took."""
    out = tmp_path / "out.jsonl"
    conf = config(out, hold=True, close=close)
    client, counter, transport = client_for(conf, forward)
    track(client, ["Lucky"] * 4)

    assert client.close(timeout=30) == []
    supervisor = transport.supervisor
    assert written(out) == [f"id-{i}" for i in range(4)]  # close delivered them, then raised
    assert supervisor.counts == {"accepted": 4}
    assert supervisor.failure == f"the inner transport 'archive' raised {raised}"
    if forward:
        assert counter.by_status == {"accepted": 4}
        assert supervisor.unaccounted == 0
    else:
        assert supervisor.unaccounted is None
    # It still ends the sender, once its last reports have gone.
    assert supervisor.process.exitcode == (3 if close == "exit" else 1)


def test_a_drain_that_dies_and_a_close_that_raises_both_say_why(tmp_path: Path) -> None:
    """Both causes are kept, in order: the second one alone hid why the drain stopped."""
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out, hold=True, close="raise"))
    transport: Any = client.pipeline.transport("default")
    track(client, ["Lucky", "Lucky", DOOMED, "Lucky"])

    with pytest.raises(TransportError, match="is not running"):
        client.flush(timeout=30)
    client.close(timeout=30)
    supervisor = transport.supervisor
    assert supervisor.failure == (
        "the sender stopped delivering: Doom: the sender's drain must not survive this; "
        "the inner transport 'archive' raised RuntimeError in close: close exploded"
    )
    assert counter.reports == []
    assert supervisor.counts == {}
    assert supervisor.unaccounted == 4  # two held, the doomed one, and the one after it
    assert written(out) == []


def test_the_sender_logs_each_methods_first_exception_once(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """With its traceback, for whoever fixes the bug; once per method, not once per message:
    the reports say the rest. (The sender's log is its stderr, which it shares with this
    process.)"""
    out = tmp_path / "out.jsonl"
    client, counter = observed_client(config(out, flush="raise"))
    track(client, [UNLUCKY] * 3)
    for _ in range(2):
        with pytest.raises(TransportError, match="raised RuntimeError in flush"):
            client.flush(timeout=30)
    track(client, [UNLUCKY, "Lucky"], first=3)
    client.close(timeout=30)
    assert counter.by_status == {"failed": 4, "accepted": 1}

    err = capfd.readouterr().err
    assert err.count(f"{DISK_FULL} (logged once per method)") == 1
    assert err.count("OSError: [Errno 28] No space left on device") == 1  # its traceback
    flush = "the inner transport 'archive' raised RuntimeError in flush: flush exploded"
    assert err.count(f"{flush} (logged once per method)") == 1
    assert err.count("RuntimeError: flush exploded") == 1
